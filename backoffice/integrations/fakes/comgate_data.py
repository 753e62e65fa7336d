"""Data of the fake Comgate: payouts (transfers) with their rows, generated deterministically.

A payout holds payments (row type 1), refunds (2), a monthly fee (3), other fees / chargebacks (4);
the summary row (5) is computed from them. Every row keeps Comgate's rule transferred = confirmed - fee.

Rows are served as the statement CSV prints them (sinfin/comgate_ruby `test/fixtures/csvs.zip`): its
column labels ("Variabilní symbol platby", "Měna", ...), decimal commas ("129,00"), the sum row with
merchant "-" and product "suma". CZK payouts print times as that CSV does (`2023-08-08 01:01:08`),
EUR payouts as a portal export does (`27.03.2026 09:16`, to the minute), so both forms are exercised.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
# Domestic number/bank form for both currencies, as every example of transferList shows.
OUTGOING_ACCOUNT = {"CZK": "281481882/0300", "EUR": "281481891/0300"}
MINUTE_DATES = frozenset({"EUR"})  # currencies whose payouts print `dd.mm.yyyy HH:MM`
CARD_FEE_RATE = Decimal("0.0109")
BANK_FEE_RATE = Decimal("0.0079")
MONTHLY_FEE = {"CZK": Decimal("299.00"), "EUR": Decimal("12.00")}


@dataclass(frozen=True)
class FakeRow:
    """One row of a fake payout; transferred = confirmed - fee, as in Comgate's statements."""

    row_type: int
    trans_id: str
    ref_id: str
    payer_variable_symbol: str
    confirmed_amount: Decimal
    fee: Decimal
    paid_at: datetime | None  # Prague local time, naive, as Comgate prints it
    method: str
    label: str

    @property
    def transferred_amount(self) -> Decimal:
        """What reached the merchant's account for this row."""
        return self.confirmed_amount - self.fee


@dataclass
class FakeTransfer:
    """One payout with its rows (the summary row is computed when served)."""

    transfer_id: int
    transfer_date: date
    currency: str
    account_counterparty: str
    variable_symbol: str
    rows: list[FakeRow] = field(default_factory=list)

    def summary(self) -> FakeRow:
        """The typ-5 row: sums of the other rows."""
        return FakeRow(
            row_type=5,
            trans_id="",
            ref_id="",
            payer_variable_symbol="",
            confirmed_amount=sum((r.confirmed_amount for r in self.rows), Decimal("0")),
            fee=sum((r.fee for r in self.rows), Decimal("0")),
            paid_at=None,
            method="",
            label="suma",
        )

    @property
    def minute_dates(self) -> bool:
        """Whether this payout prints times as `27.03.2026 09:16` (else `2023-08-08 01:01:08`)."""
        return self.currency in MINUTE_DATES

    def list_item(self) -> dict[str, Any]:
        """This transfer as transferList shows it."""
        return {
            "transferId": self.transfer_id,
            "transferDate": self.transfer_date.isoformat(),
            "accountCounterparty": self.account_counterparty,
            "accountOutgoing": OUTGOING_ACCOUNT.get(self.currency, OUTGOING_ACCOUNT["CZK"]),
            "variableSymbol": self.variable_symbol,
        }

    def wire_rows(self, merchant: str) -> list[dict[str, Any]]:
        """The rows as singleTransfer sends them (Czech column labels, decimal strings)."""
        return [self._wire(row, merchant) for row in [*self.rows, self.summary()]]

    def _wire(self, row: FakeRow, merchant: str) -> dict[str, Any]:
        time_format, day_format = (
            ("%d.%m.%Y %H:%M", "%d.%m.%Y") if self.minute_dates else ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d")
        )
        paid = row.paid_at.strftime(time_format) if row.paid_at else ""
        created = (row.paid_at - timedelta(minutes=2)).strftime(time_format) if row.paid_at else ""
        summary = row.row_type == 5
        email = f"zakaznik{row.payer_variable_symbol[-4:]}@example.com" if row.row_type == 1 else ""
        card = row.method == "Karta online"
        return {
            "typ": row.row_type,
            "Merchant": "-" if summary else merchant,  # the real sum row prints "-", not "suma"
            "Datum založení": created,
            "Datum zaplacení": paid,
            "Datum převodu": self.transfer_date.strftime(day_format),
            "Měsíc fakturace": "",
            "ID ComGate": row.trans_id,
            "Metoda": row.method,
            "Produkt": row.label,
            "Popis": "-" if summary else f"{row.ref_id} \u2013 {email}" if email else row.label,
            "E-mail plátce": "-" if summary else email,
            "Variabilní symbol platby": "-" if summary else row.payer_variable_symbol,
            "Variabilní symbol převodu": self.variable_symbol,
            "ID od klienta": "-" if summary else row.ref_id,
            "Měna": self.currency,
            "Potvrzená částka": _comma(row.confirmed_amount),
            "Převedená částka": _comma(row.transferred_amount),
            "Poplatek celkem": _comma(row.fee),
            # The fake books its whole fee as the processor's share; the three parts add up to the total.
            "Poplatek mezibankovní": _comma(Decimal(0)),
            "Poplatek asociace": _comma(Decimal(0)),
            "Poplatek zpracovatel": _comma(row.fee),
            "Typ karty": "EU_CONSUMER" if card else "",
        }


def _comma(amount: Decimal) -> str:
    return f"{amount:.2f}".replace(".", ",")  # "129,00", as the statement CSV prints amounts


def price(rng: random.Random, currency: str) -> Decimal:
    """A plausible order total."""
    if currency == "EUR":
        return Decimal(rng.randrange(800, 18_000)) / 100
    return Decimal(rng.randrange(150, 4_000))


def make_row(
    rng: random.Random,
    row_type: int,
    day: date,
    vs: str,
    confirmed: Decimal,
    fee: Decimal,
    method: str = "",
    ref_id: str | None = None,
) -> FakeRow:
    """A row of a payout of `day`, paid one to three days before it."""
    paid = datetime.combine(day - timedelta(days=rng.randint(1, 3)), time(rng.randrange(7, 23)))
    paid += timedelta(minutes=rng.randrange(60), seconds=rng.randrange(60))
    alphabet = string.ascii_uppercase + string.digits
    trans_id = "-".join("".join(rng.choices(alphabet, k=4)) for _ in range(3))
    moves_money = row_type in (1, 2, 4)
    return FakeRow(
        row_type=row_type,
        trans_id=trans_id if moves_money else "",
        ref_id=(ref_id if ref_id is not None else f"X{vs}") if vs else "",
        payer_variable_symbol=vs,
        confirmed_amount=confirmed,
        fee=fee,
        paid_at=paid if moves_money else None,
        method=method if row_type == 1 else "",
        label=method if row_type in (3, 4) else f"Objednávka {vs}" if vs else "",
    )


def make_payment(
    rng: random.Random, day: date, currency: str, vs: str, amount: Decimal | None, ref_id: str | None = None
) -> FakeRow:
    """A card (70 %) or bank payment with Comgate's percentage fee."""
    amount = amount if amount is not None else price(rng, currency)
    card = rng.random() < 0.7
    fee = (amount * (CARD_FEE_RATE if card else BANK_FEE_RATE)).quantize(CENT, ROUND_HALF_UP)
    return make_row(rng, 1, day, vs, amount, fee, "Karta online" if card else "Bankovní převod", ref_id)


def generate_rows(
    rng: random.Random,
    day: date,
    currency: str,
    var_symbols: Sequence[str],
    amounts: Mapping[str, Decimal],
    ref_ids: Mapping[str, str],
    unmatched: int,
    refunds: int,
    monthly_fee: bool,
    chargeback: bool,
) -> list[FakeRow]:
    """The rows of one payout: payments to `var_symbols` first, then the rest."""
    rows = [make_payment(rng, day, currency, vs, amounts.get(vs), ref_ids.get(vs)) for vs in var_symbols]
    # Symbols starting 77/66/55 never collide with the fake Shoptet's YYYYnnnnnn invoice numbers.
    rows += [
        make_payment(rng, day, currency, f"77{rng.randrange(10**7, 10**8)}", None) for _ in range(unmatched)
    ]
    for _ in range(refunds):
        amount = (price(rng, currency) / 2).quantize(CENT)
        rows.append(make_row(rng, 2, day, f"66{rng.randrange(10**7, 10**8)}", -amount, Decimal(0)))
    if monthly_fee:
        rows.append(make_row(rng, 3, day, "", Decimal(0), MONTHLY_FEE[currency], "Měsíční poplatek"))
    if chargeback:
        vs = f"55{rng.randrange(10**7, 10**8)}"
        rows.append(make_row(rng, 4, day, vs, -price(rng, currency), Decimal("15.00"), "Chargeback"))
    return rows
