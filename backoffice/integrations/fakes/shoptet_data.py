"""Deterministic, realistic Shoptet data for the fake: invoices, orders and stock, from a seed.

Everything is produced in Shoptet's wire format (decimal strings, `+0200` times), so the fake
serves these dicts as they are and tests compare imported rows against them.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from backoffice.calendar import PRAGUE

CENT = Decimal("0.01")
JSONObject = dict[str, Any]


@dataclass(frozen=True)
class Product:
    """A catalogue product of the fake e-shop."""

    code: str
    name: str
    variant: str | None
    vat_rate: Decimal
    price_czk: Decimal  # with VAT
    location: str


def _catalogue() -> list[Product]:
    names = [
        ("Pleťový krém s aloe vera", "50 ml", "21"),
        ("Konopný balzám na rty", None, "21"),
        ("Levandulové mýdlo", "100 g", "21"),
        ("Šampon s kopřivou", "250 ml", "21"),
        ("Regenerační sérum", "30 ml", "21"),
        ("Bylinný čaj Heřmánek", "20 sáčků", "12"),
        ("Měsíčková mast", "50 ml", "21"),
        ("Tělové máslo Bambucké", "200 ml", "21"),
        ("Rakytníkový olej", "100 ml", "21"),
        ("Zubní pasta s mátou", "75 ml", "21"),
        ("Pohankové sušenky", "120 g", "12"),
        ("Deodorant Citrus", "50 ml", "21"),
        ("Sprchový gel Šípek", "250 ml", "21"),
        ("Med lesní", "500 g", "12"),
        ("Micelární voda", "400 ml", "21"),
        ("Kondicionér Argan", "200 ml", "21"),
    ]
    products = []
    for n, (name, variant, vat) in enumerate(names, start=1):
        price = Decimal(79 + (n * 37) % 420) + Decimal("0.90")
        location = f"H{1 + n % 8}/M{1 + (n * 3) % 14}/R{1 + (n * 5) % 20}"
        products.append(Product(f"ANL-{n:03d}", name, variant, Decimal(vat), price, location))
    return products


CATALOGUE = _catalogue()
# (first names, surnames) by grammatical gender: Czech surnames agree with the first name.
NAMES = (
    (["Jana", "Lucie", "Eva", "Kateřina", "Tereza"], ["Nováková", "Dvořáková", "Procházková", "Veselá"]),
    (["Petr", "Tomáš", "Martin", "Jiří", "Ondřej"], ["Novák", "Svoboda", "Černý", "Kučera", "Horák"]),
)
COMPANIES = ["Bylinka s.r.o.", "Lékárna U Zlaté váhy", "Kosmetika Brno a.s.", "Zdravá výživa v.o.s."]
STREETS = ["Národní", "Masarykova", "Husova", "Palackého", "Nádražní", "Komenského", "Žižkova"]
CITIES = [("Praha", "110 00"), ("Brno", "602 00"), ("Ostrava", "702 00"), ("Plzeň", "301 00")]
SHIPPING = ["Zásilkovna", "PPL", "GLS", "Osobní odběr"]
BILLING_METHODS = ["Převodem", "Platební karta (Comgate)", "Dobírkou", "Hotově"]
SHIPPING_PRICE_CZK = {"Zásilkovna": Decimal("79.00"), "PPL": Decimal("119.00"), "GLS": Decimal("109.00")}
EUR_RATES = (Decimal("24.725"), Decimal("25.310"))  # a range of CZK per EUR, 3 decimals


def money(value: Decimal) -> str:
    """A price as Shoptet sends it: a string with two decimals."""
    return str(value.quantize(CENT, ROUND_HALF_UP))


def shoptet_time(value: datetime) -> str:
    """`2024-05-06T10:15:00+0200`."""
    return value.strftime("%Y-%m-%dT%H:%M:%S%z")


def product_line(
    rng: random.Random, position: int, product: Product, currency_rate: Decimal, amount: int
) -> JSONObject:
    """An invoice/order line of `amount` pieces of `product`, priced in a currency of `currency_rate` CZK."""
    unit_with_vat = (product.price_czk / currency_rate).quantize(CENT, ROUND_HALF_UP)
    return priced_line(
        position,
        "product",
        product.code,
        product.name,
        product.variant,
        amount,
        product.vat_rate,
        unit_with_vat,
        rng,
    )


def priced_line(
    position: int,
    item_type: str,
    code: str | None,
    name: str,
    variant: str | None,
    amount: int,
    vat_rate: Decimal,
    unit_with_vat: Decimal,
    rng: random.Random,
) -> JSONObject:
    """A line in Shoptet's wire format; VAT is taken out of the price with VAT, per line."""
    with_vat = unit_with_vat * amount
    without_vat = (with_vat / (1 + vat_rate / 100)).quantize(CENT, ROUND_HALF_UP)
    unit_without = (unit_with_vat / (1 + vat_rate / 100)).quantize(CENT, ROUND_HALF_UP)
    return {
        "itemId": position,
        "productGuid": str(uuid.UUID(int=rng.getrandbits(128))) if item_type == "product" else None,
        "code": code,
        "itemType": item_type,
        "name": name,
        "variantName": variant,
        "brand": "Anela" if item_type == "product" else None,
        "amount": f"{amount}.000",
        "amountUnit": "ks",
        "remark": None,
        "priceRatio": "1.0000",
        "itemPrice": {
            "withVat": money(with_vat),
            "withoutVat": money(without_vat),
            "vat": money(with_vat - without_vat),
            "vatRate": money(vat_rate),
        },
        "unitPrice": {
            "withVat": money(unit_with_vat),
            "withoutVat": money(unit_without),
            "vat": money(unit_with_vat - unit_without),
            "vatRate": money(vat_rate),
        },
    }


def random_person(rng: random.Random) -> tuple[str, str | None]:
    """A Czech full name and, for a quarter of the customers, a company."""
    first_names, surnames = rng.choice(NAMES)
    name = f"{rng.choice(first_names)} {rng.choice(surnames)}"
    return name, rng.choice(COMPANIES) if rng.random() < 0.25 else None


def random_address(rng: random.Random, full_name: str, company: str | None) -> JSONObject:
    """A complete Czech address in Shoptet's format."""
    city, zip_code = rng.choice(CITIES)
    return {
        "company": company,
        "fullName": full_name,
        "street": rng.choice(STREETS),
        "houseNumber": str(rng.randint(1, 120)),
        "city": city,
        "district": None,
        "additional": None,
        "zip": zip_code,
        "countryCode": "CZ",
    }


def generate_invoice(rng: random.Random, code: str, day: date, eur_share: float = 0.2) -> JSONObject:
    """One invoice detail (with `items`) created on `day` in Prague, in EUR (`eur_share`) or CZK."""
    currency = "EUR" if rng.random() < eur_share else "CZK"
    low, high = (int(r * 1000) for r in EUR_RATES)
    rate = Decimal(1) if currency == "CZK" else Decimal(rng.randint(low, high)) / 1000
    created = datetime.combine(day, time(0), PRAGUE) + timedelta(seconds=rng.randint(0, 86399))
    full_name, company = random_person(rng)
    items = [
        product_line(rng, n, product, rate, rng.randint(1, 3))
        for n, product in enumerate(rng.sample(CATALOGUE, rng.randint(1, 4)), start=1)
    ]
    shipping = rng.choice(SHIPPING)
    if shipping in SHIPPING_PRICE_CZK:
        unit = (SHIPPING_PRICE_CZK[shipping] / rate).quantize(CENT, ROUND_HALF_UP)
        items.append(priced_line(len(items) + 1, "shipping", None, shipping, None, 1, Decimal(21), unit, rng))
    with_vat = sum((Decimal(i["itemPrice"]["withVat"]) for i in items), Decimal(0))
    without_vat = sum((Decimal(i["itemPrice"]["withoutVat"]) for i in items), Decimal(0))
    address = random_address(rng, full_name, company)
    return {
        "code": code,
        "isValid": rng.random() > 0.03,
        "proformaInvoiceCodes": [],
        "orderCode": f"O{code}",
        "creationTime": shoptet_time(created),
        "changeTime": shoptet_time(created + timedelta(minutes=rng.randint(0, 90))),
        "dueDate": (day + timedelta(days=14)).isoformat(),
        "taxDate": day.isoformat(),
        "varSymbol": int(code),
        "constSymbol": "0308",
        "specSymbol": None,
        "billingMethod": {"id": 1 + rng.randrange(len(BILLING_METHODS)), "name": rng.choice(BILLING_METHODS)},
        "billingAddress": address,
        "deliveryAddress": None,
        "addressesEqual": True,
        "price": {
            "vat": money(with_vat - without_vat),
            "toPay": money(with_vat),
            "currencyCode": currency,
            "withoutVat": money(without_vat),
            "withVat": money(with_vat),
            "exchangeRate": f"{rate:.8f}",
        },
        "items": items,
        "documentRemark": None,
        "vatPayer": True,
        "vatMode": "Normal",
    }


def generate_invoices(
    seed: int, days: list[date], per_day: int, eur_share: float = 0.2
) -> dict[str, JSONObject]:
    """`per_day` invoices for each of `days`, keyed by code; codes are `YYYY` + a 6-digit number."""
    rng = random.Random(seed)
    invoices: dict[str, JSONObject] = {}
    numbers: dict[int, int] = {}
    for day in sorted(days):
        for _ in range(per_day):
            numbers[day.year] = numbers.get(day.year, 0) + 1
            code = f"{day.year}{numbers[day.year]:06d}"
            invoices[code] = generate_invoice(rng, code, day, eur_share)
    return invoices


def invoice_list_item(invoice: JSONObject) -> JSONObject:
    """The summary `GET /api/invoices` lists for an invoice (no items, no addresses)."""
    address = invoice["billingAddress"] or {}
    return {
        "code": invoice["code"],
        "varSymbol": invoice["varSymbol"],
        "isValid": invoice["isValid"],
        "proformaInvoiceCodes": list(invoice["proformaInvoiceCodes"]),
        "orderCode": invoice["orderCode"],
        "creationTime": invoice["creationTime"],
        "changeTime": invoice["changeTime"],
        "billCompany": address.get("company"),
        "billFullName": address.get("fullName"),
        "price": dict(invoice["price"]),
        "dueDate": invoice["dueDate"],
        "taxDate": invoice["taxDate"],
        "paid": False,
    }
