"""Picking lists without I/O: parsing Shoptet order details, grouping, the summary, layout helpers."""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from pypdf import PdfReader

from backoffice.warehouse.picking import (
    address_problems,
    format_quantity,
    group_by_shipping,
    is_pickup,
    parse_order,
    position_key,
    summarize,
)
from backoffice.warehouse.picking_pdf import (
    DASH,
    ITEM_WIDTHS,
    SUMMARY_WIDTHS,
    ListHeader,
    block_height,
    render_picking_list,
    starts_new_page,
)
from backoffice.warehouse.picking_run import slug

ADDRESS = {
    "company": None,
    "fullName": "Jana Nováková",
    "street": "Národní",
    "houseNumber": "12",
    "city": "Praha",
    "zip": "110 00",
    "countryCode": "CZ",
}


def detail(code: str = "2024100001", shipping: str = "Zásilkovna", **extra: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "code": code,
        "status": {"id": -2, "name": "Vyřizuje se"},
        "phone": "+420 777 123 456",
        "billingAddress": dict(ADDRESS),
        "deliveryAddress": None,
        "shipping": {"guid": "g", "name": shipping},
        "notes": {"customerRemark": "Prosím zabalit jako dárek.", "eshopRemark": None},
        "items": [
            {
                "itemType": "product",
                "code": "ANL-001",
                "name": "Pleťový krém",
                "variantName": "50 ml",
                "amount": "2.000",
                "stockLocation": "H10/M1/R1",
                "remark": None,
            },
            {
                "itemType": "product",
                "code": "ANL-002",
                "name": "Konopný balzám",
                "variantName": None,
                "amount": "1.000",
                "stockLocation": "H2/M3/R4",
                "remark": "bez krabičky",
            },
            {"itemType": "shipping", "code": None, "name": "Zásilkovna", "amount": "1.000"},
            {"itemType": "discount-coupon", "code": "SLEVA", "name": "Sleva 10 %", "amount": "1.000"},
        ],
    }
    order.update(extra)
    return order


def test_parse_order_keeps_goods_only_with_positions_notes_and_remarks() -> None:
    order = parse_order(detail())
    assert order.code == "2024100001" and order.customer == "Jana Nováková"
    assert order.shipping == "Zásilkovna" and order.status_id == -2
    assert order.address == "Národní 12, 110 00 Praha, CZ"
    assert order.remarks == ("Zákazník: Prosím zabalit jako dárek.",)
    assert [(i.code, i.quantity, i.position, i.variant, i.note) for i in order.items] == [
        ("ANL-001", Decimal(2), "H10/M1/R1", "50 ml", None),
        ("ANL-002", Decimal(1), "H2/M3/R4", None, "bez krabičky"),
    ]
    assert order.address_problems == ()


@pytest.mark.parametrize("item_type", ["deposit", "generic-item", "product-set-item"])
def test_lines_that_are_not_goods_are_not_picked(item_type: str) -> None:
    # Shoptet's order item types (OpenAPI "Types of order items"): deposits, non-specific items
    # and product-set items were listed as goods to pick.
    line = {"itemType": item_type, "code": "X-1", "name": "Záloha na obal", "amount": "1.000"}
    order = parse_order(detail(items=[*detail()["items"], line]))
    assert [i.code for i in order.items] == ["ANL-001", "ANL-002"]


def test_a_product_set_is_picked_once_as_the_set() -> None:
    lines = [
        {"itemType": "product-set", "code": "SET-1", "name": "Dárková sada", "amount": "1.000"},
        {"itemType": "product-set-item", "code": "ANL-001", "name": "Olej (v sadě)", "amount": "1.000"},
        {"itemType": "product-set-item", "code": "ANL-002", "name": "Mýdlo (v sadě)", "amount": "1.000"},
    ]
    order = parse_order(detail(items=lines))
    assert [(i.code, i.quantity) for i in order.items] == [("SET-1", Decimal(1))]


def test_delivery_address_wins_and_its_gaps_are_problems() -> None:
    delivery = {**ADDRESS, "fullName": "Petr Svoboda", "street": "", "zip": None}
    order = parse_order(detail(deliveryAddress=delivery))
    assert order.customer == "Petr Svoboda"
    assert order.address_problems == ("chybí ulice", "chybí PSČ")


@pytest.mark.parametrize(
    ("address", "shipping", "problems"),
    [
        (ADDRESS, "PPL", ()),
        ({**ADDRESS, "city": " "}, "PPL", ("chybí město",)),
        ({}, "GLS", ("chybí jméno", "chybí ulice", "chybí město", "chybí PSČ")),
        ({"fullName": "Eva Veselá"}, "Osobní odběr", ()),
        ({"company": "Bylinka s.r.o."}, "OSOBNI ODBER - prodejna Brno", ()),
        ({}, "Osobní odběr", ("chybí jméno",)),
        (None, "Zásilkovna", ("chybí jméno", "chybí ulice", "chybí město", "chybí PSČ")),
    ],
)
def test_address_problems(address: dict[str, Any] | None, shipping: str, problems: tuple[str, ...]) -> None:
    assert address_problems(address, shipping) == problems


def test_pickup_is_recognised_without_case_or_diacritics() -> None:
    assert is_pickup("Osobní odběr") and is_pickup("osobni odber Praha")
    assert not is_pickup("Zásilkovna") and not is_pickup("PPL")


def test_group_by_shipping_sorts_methods_and_orders() -> None:
    orders = [
        parse_order(detail("3", "PPL")),
        parse_order(detail("1", "Zásilkovna")),
        parse_order(detail("2", "PPL")),
        parse_order(detail("4", "Osobní odběr")),
        parse_order(detail("5") | {"shipping": None}),
    ]
    groups = group_by_shipping(orders)
    assert list(groups) == ["Bez dopravy", "Osobní odběr", "PPL", "Zásilkovna"]
    assert [o.code for o in groups["PPL"]] == ["2", "3"]


def test_summary_totals_per_product_in_picking_walk_order() -> None:
    first = parse_order(detail("1"))
    second = parse_order(
        detail(
            "2",
            items=[
                {
                    "itemType": "product",
                    "code": "ANL-001",
                    "name": "Pleťový krém",
                    "amount": "3.000",
                    "stockLocation": "H10/M1/R1",
                },
                {"itemType": "product", "code": "ANL-009", "name": "Med", "amount": "1.500"},
            ],
        )
    )
    lines = summarize([first, second])
    assert [(s.code, s.quantity, s.orders) for s in lines] == [
        ("ANL-002", Decimal(1), 1),  # H2 before H10: natural order of positions
        ("ANL-001", Decimal(5), 2),
        ("ANL-009", Decimal("1.5"), 1),  # no position: last
    ]


def test_position_key_is_natural_and_puts_unknown_last() -> None:
    positions = ["H10/M1/R1", "H2/M11/R3", None, "H2/M3/R20", "h2/m3/r4"]
    assert sorted(positions, key=position_key) == ["h2/m3/r4", "H2/M3/R20", "H2/M11/R3", "H10/M1/R1", None]


@pytest.mark.parametrize(("raw", "text"), [("2.000", "2"), ("1.500", "1.5"), ("0.250", "0.25"), ("10", "10")])
def test_format_quantity(raw: str, text: str) -> None:
    assert format_quantity(Decimal(raw)) == text


def test_starts_new_page_only_when_it_helps() -> None:
    top, bottom = 23.0, 279.0
    assert not starts_new_page(100, 50, top, bottom)  # fits here
    assert starts_new_page(250, 50, top, bottom)  # does not fit here, fits on a new page
    assert not starts_new_page(250, 400, top, bottom)  # longer than any page: flow over
    assert not starts_new_page(top, 270, top, bottom)  # already at the top


def test_block_height_grows_with_items_and_remarks() -> None:
    plain = parse_order(detail(notes=None))
    assert block_height(parse_order(detail())) > block_height(plain)
    assert block_height(plain) > 0


def test_table_widths_fill_the_a4_text_width() -> None:
    assert sum(ITEM_WIDTHS) == sum(SUMMARY_WIDTHS) == 210 - 2 * 12


def test_slug_is_ascii_and_safe_for_file_names() -> None:
    assert slug("Osobní odběr") == "osobni-odber"
    assert slug("../etc/passwd") == "etc-passwd"
    assert slug("!!!") == "x"


def test_rendered_pdf_has_czech_text_every_order_and_the_summary() -> None:
    orders = [parse_order(detail("2024100001")), parse_order(detail("2024100002"))]
    header = ListHeader("Zásilkovna", "morning", datetime(2024, 5, 6, 7, 0))
    pdf = render_picking_list(header, orders, summarize(orders))
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.pages[0].mediabox.width == pytest.approx(595.28, abs=0.5)  # A4 in points
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "2024100001" in text and "2024100002" in text
    assert "Pleťový krém" in text and "Prosím zabalit jako dárek." in text
    assert "Souhrn podle produktu" in text and "H10/M1/R1" in text
    summary_lines = reader.pages[-1].extract_text().splitlines()
    assert f"Souhrn podle produktu {DASH} 2 produktů, 6 ks" in summary_lines
    # Picking-walk order, total pieces and number of orders per product.
    assert summary_lines.index("☐ H2/M3/R4 ANL-002 Konopný balzám 2 2") < summary_lines.index(
        "☐ H10/M1/R1 ANL-001 Pleťový krém 50 ml 4 2"
    )


def test_an_order_running_over_a_page_is_named_on_the_next_page() -> None:
    items = [
        {"itemType": "product", "code": f"ANL-{n:03d}", "name": "Šampon s kopřivou", "amount": "1.000"}
        for n in range(80)
    ]
    orders = [parse_order(detail("2024100007", items=items))]
    pdf = render_picking_list(ListHeader("PPL", "noon", datetime(2024, 5, 6, 12)), orders, summarize(orders))
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]
    assert len(pages) >= 3  # two pages of items, then the summary
    assert "2024100007 (pokračování)" in pages[1] and "(pokračování)" not in pages[0]
    assert "(pokračování)" not in pages[-1]
