"""The fake Shoptet's generated data: deterministic, consistent, and realistic enough to test on."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from backoffice.integrations.fakes.shoptet import FakeShoptet
from backoffice.integrations.fakes.shoptet_data import generate_invoices, invoice_list_item
from backoffice.integrations.fakes.shoptet_orders import generate_orders

DAYS = [date(2024, 5, 5), date(2024, 5, 6)]


def test_same_seed_same_data_other_seed_other_data() -> None:
    assert generate_invoices(3, DAYS, 10) == generate_invoices(3, DAYS, 10)
    assert generate_invoices(3, DAYS, 10) != generate_invoices(4, DAYS, 10)


def test_invoice_totals_are_the_sum_of_their_items() -> None:
    for invoice in generate_invoices(5, DAYS, 40).values():
        items = invoice["items"]
        assert Decimal(invoice["price"]["withVat"]) == sum(Decimal(i["itemPrice"]["withVat"]) for i in items)
        assert Decimal(invoice["price"]["withoutVat"]) == sum(
            Decimal(i["itemPrice"]["withoutVat"]) for i in items
        )
        assert {i["itemPrice"]["vatRate"] for i in items} <= {"21.00", "12.00"}


def test_both_currencies_and_every_day_appear() -> None:
    invoices = generate_invoices(5, DAYS, 40).values()
    assert {i["price"]["currencyCode"] for i in invoices} == {"CZK", "EUR"}
    assert {i["taxDate"] for i in invoices} == {"2024-05-05", "2024-05-06"}


def test_orders_carry_what_a_picking_list_needs() -> None:
    orders = generate_orders(2, 60, date(2024, 5, 6)).values()
    assert {o["shipping"]["name"] for o in orders} == {"Zásilkovna", "PPL", "GLS", "Osobní odběr"}
    assert all(o["status"]["id"] == -2 for o in orders)
    products = [i for o in orders for i in o["items"] if i["itemType"] == "product"]
    assert all(i["stockLocation"].count("/") == 2 for i in products)
    incomplete = [
        o
        for o in orders
        if o["deliveryAddress"] and not all(o["deliveryAddress"][k] for k in ("street", "city", "zip"))
    ]
    assert incomplete, "some orders must lack part of their delivery address"


def test_the_fake_lists_invoices_of_a_time_range() -> None:
    fake = FakeShoptet(1, days=DAYS, invoices_per_day=5)
    assert len(fake.state.invoices) == 10
    assert fake.state.stock[1], "the default stock holds the catalogue"


def test_invoices_name_their_proforma_invoices_as_shoptet_does() -> None:
    # The OpenAPI's invoice list and detail carry `proformaInvoiceCodes` (a list), not a single code.
    invoices = generate_invoices(3, [date(2024, 5, 6)], 5)
    assert all(i["proformaInvoiceCodes"] == [] and "proformaInvoiceCode" not in i for i in invoices.values())
    fake = FakeShoptet(3, days=[date(2024, 5, 6)], invoices_per_day=5)
    listed = invoice_list_item(next(iter(fake.state.invoices.values())))
    assert listed["proformaInvoiceCodes"] == [] and "proformaInvoiceCode" not in listed
