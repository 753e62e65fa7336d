"""Picking lists: Shoptet order details → what the warehouse picks, grouped by shipping method.

Pure functions over Shoptet's order-detail JSON (`GET /api/orders/{code}?include=stockLocation,notes`);
the run that fetches, claims, prints and moves orders is `backoffice.warehouse.picking_run`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

# Order lines that are not goods on a shelf: Shoptet's order item types (its OpenAPI's "Types of
# order items") other than product, bazar, gift and product-set. A set is picked as its own line
# (one code, what the customer bought); its product-set-item lines only list what is inside it,
# so picking them too would put every set on the list twice.
NOT_PICKED = frozenset(
    {
        "shipping",
        "billing",
        "discount-coupon",
        "volume-discount",
        "service",
        "gift-certificate",
        "generic-item",
        "product-set-item",
        "deposit",
    }
)
NO_SHIPPING = "Bez dopravy"
# Personal pickup needs no postal address, only a name (compared without case and diacritics).
PICKUP_WORDS = ("osobni odber", "personal pickup", "vyzvednuti na prodejne")
ADDRESS_FIELDS = {"street": "ulice", "city": "město", "zip": "PSČ"}


@dataclass(frozen=True)
class PickingItem:
    """One line to pick."""

    code: str
    name: str
    variant: str | None
    quantity: Decimal
    position: str | None
    note: str | None


@dataclass(frozen=True)
class PickingOrder:
    """An order as the picking list shows it."""

    code: str
    customer: str
    company: str | None
    phone: str | None
    shipping: str
    address: str
    remarks: tuple[str, ...]
    items: tuple[PickingItem, ...]
    status_id: int | None
    address_problems: tuple[str, ...]


@dataclass(frozen=True)
class SummaryLine:
    """Total quantity of one product over a picking list, for the picking walk."""

    code: str
    name: str
    variant: str | None
    quantity: Decimal
    position: str | None
    orders: int


def fold(text: str) -> str:
    """Lower-case ASCII form of `text` (`Osobní odběr` → `osobni odber`), for comparisons."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().strip()


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def quantity_of(value: Any) -> Decimal:
    """Shoptet's amount (`"2.000"`) as a Decimal; anything unreadable counts as 0."""
    try:
        return Decimal(_text(value) or "0")
    except InvalidOperation:
        return Decimal(0)


def format_quantity(quantity: Decimal) -> str:
    """`2` for whole pieces, `1.5` otherwise (no trailing zeros)."""
    if quantity == quantity.to_integral_value():
        return str(int(quantity))
    return format(quantity.normalize(), "f")


def is_pickup(shipping: str) -> bool:
    """True for personal pickup, which needs no postal address."""
    folded = fold(shipping)
    return any(word in folded for word in PICKUP_WORDS)


def address_problems(address: Mapping[str, Any] | None, shipping: str) -> tuple[str, ...]:
    """What is missing for the parcel to be sent: the name, and unless picked up, street/city/ZIP."""
    address = address or {}
    problems = []
    if not (_text(address.get("fullName")) or _text(address.get("company"))):
        problems.append("chybí jméno")
    if not is_pickup(shipping):
        problems += [f"chybí {label}" for key, label in ADDRESS_FIELDS.items() if not _text(address.get(key))]
    return tuple(problems)


def _format_address(address: Mapping[str, Any]) -> str:
    street = " ".join(p for p in (_text(address.get("street")), _text(address.get("houseNumber"))) if p)
    town = " ".join(p for p in (_text(address.get("zip")), _text(address.get("city"))) if p)
    parts = [street, _text(address.get("additional")), town, _text(address.get("countryCode"))]
    return ", ".join(p for p in parts if p)


def parse_order(detail: Mapping[str, Any]) -> PickingOrder:
    """A picking order from an order detail fetched with `include=stockLocation,notes`."""
    shipping = _text((detail.get("shipping") or {}).get("name")) or NO_SHIPPING
    # Ship to the delivery address; Shoptet leaves it empty when it equals the billing address.
    address = detail.get("deliveryAddress") or detail.get("billingAddress") or {}
    billing = detail.get("billingAddress") or {}
    customer = _text(address.get("fullName")) or _text(billing.get("fullName"))
    company = _text(address.get("company")) or _text(billing.get("company")) or None
    notes = detail.get("notes") or {}
    remarks = tuple(
        f"{label}: {_text(notes.get(key))}"
        for key, label in (("customerRemark", "Zákazník"), ("eshopRemark", "E-shop"))
        if _text(notes.get(key))
    )
    items = tuple(
        PickingItem(
            code=_text(item.get("code")) or "?",
            name=_text(item.get("name")),
            variant=_text(item.get("variantName")) or None,
            quantity=quantity_of(item.get("amount")),
            position=_text(item.get("stockLocation")) or None,
            note=_text(item.get("remark")) or None,
        )
        for item in detail.get("items") or []
        if _text(item.get("itemType")) not in NOT_PICKED
    )
    status = detail.get("status") or {}
    return PickingOrder(
        code=_text(detail.get("code")),
        customer=customer or company or "?",
        company=company,
        phone=_text(detail.get("phone")) or None,
        shipping=shipping,
        address=_format_address(address),
        remarks=remarks,
        items=items,
        status_id=int(status["id"]) if isinstance(status.get("id"), int) else None,
        address_problems=address_problems(address, shipping),
    )


def group_by_shipping(orders: Iterable[PickingOrder]) -> dict[str, list[PickingOrder]]:
    """Orders per shipping method, methods by name and orders by code (a stable printout)."""
    groups: dict[str, list[PickingOrder]] = defaultdict(list)
    for order in orders:
        groups[order.shipping].append(order)
    return {name: sorted(groups[name], key=lambda o: o.code) for name in sorted(groups, key=fold)}


def position_key(position: str | None) -> tuple[Any, ...]:
    """Natural order of positions (`H2/M3` before `H10/M1`); products without one go last."""
    if not position:
        return (1,)
    parts = tuple((0, int(t)) if t.isdigit() else (1, t.lower()) for t in re.findall(r"\d+|\D+", position))
    return (0, parts)


def summarize(orders: Iterable[PickingOrder]) -> list[SummaryLine]:
    """Total quantity per product code, in picking-walk order (by position, then code)."""
    totals: dict[str, list[Any]] = {}
    for order in orders:
        for item in order.items:
            line = totals.setdefault(item.code, [item, Decimal(0), set()])
            line[1] += item.quantity
            line[2].add(order.code)
    lines = [
        SummaryLine(item.code, item.name, item.variant, total, item.position, len(codes))
        for item, total, codes in totals.values()
    ]
    return sorted(lines, key=lambda line: (position_key(line.position), line.code))
