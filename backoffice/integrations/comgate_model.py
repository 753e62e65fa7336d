"""What the Comgate merchant API sends, as typed values: transfers, transfer rows, and its errors.

singleTransfer rows carry `typ` (1 payment, 2 refund, 3 monthly fee, 4 other fees / chargebacks /
manual moves, 5 summary) and the column labels of Comgate's statement export ("ID ComGate",
"ID od klienta", "Variabilní symbol plátce", "Měna", "Potvrzená částka", "Převedená částka",
"Poplatek celkem", "Datum zaplacení", ...). Labels are matched regardless of case, spaces and
diacritics; amounts may use a decimal point or a decimal comma; times are Prague local time.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from typing import Any

from backoffice.calendar import PRAGUE
from backoffice.errors import BackofficeError


class ComgateError(BackofficeError):
    """Comgate refused the request or kept failing; says which call, the status and Comgate's message."""

    status_code = 502
    code = "comgate_error"


class RowType(IntEnum):
    """The `typ` of a singleTransfer row."""

    PAYMENT = 1
    REFUND = 2
    MONTHLY_FEE = 3
    OTHER_FEE = 4
    SUMMARY = 5


@dataclass(frozen=True)
class Transfer:
    """One payout from Comgate to a bank account."""

    transfer_id: int
    transfer_date: date
    account_counterparty: str
    account_outgoing: str
    variable_symbol: str


@dataclass(frozen=True)
class TransferRow:
    """One row of a payout: a payment, a refund, a fee, or the summary."""

    row_type: RowType
    trans_id: str | None
    ref_id: str | None
    payer_variable_symbol: str | None
    currency: str | None
    confirmed_amount: Decimal
    transferred_amount: Decimal
    fee: Decimal
    paid_at: datetime | None
    method: str | None
    label: str | None


# --- parsing -------------------------------------------------------------------------------------


def _key(label: str) -> str:
    # "Variabilní symbol plátce" -> "variabilnisymbolplatce": tolerant of case, spaces and diacritics.
    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_label.lower() if ch.isalnum())


ROW_FIELDS = {
    "type": ("typ", "type"),
    "trans_id": ("idcomgate", "comgateid", "transid"),
    "ref_id": ("idodklienta", "refid"),
    "payer_vs": ("variabilnisymbolplatce", "vs"),
    "currency": ("mena", "curr", "currency"),
    "confirmed": ("potvrzenacastka", "confirmedamount"),
    "transferred": ("prevedenacastka", "transferredamount"),
    "fee": ("poplatekcelkem", "fee", "feetotal"),
    "paid_at": ("datumzaplaceni", "paiddate"),
    "method": ("metoda", "method"),
    "label": ("produkt", "popis", "label"),
}


def parse_amount(value: Any) -> Decimal:
    """An exact decimal from `"613,00"`, `"613.00"`, `613` or a JSON number; empty means zero."""
    if value is None or value == "":
        return Decimal("0")
    if isinstance(value, Decimal | int):
        return Decimal(value)
    text = "".join(str(value).split()).replace(",", ".")
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise ComgateError(f"Comgate sent an amount that is not a number: {value!r}") from exc


def parse_local_datetime(value: Any) -> datetime | None:
    """Comgate's `YYYY-MM-DD HH:MM:SS` (Prague time) as an aware UTC datetime; empty means None."""
    if value is None or str(value).strip() == "":
        return None
    parsed = datetime.fromisoformat(str(value).strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=PRAGUE)
    return parsed.astimezone(UTC)


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def parse_transfer(item: Mapping[str, Any]) -> Transfer:
    """One item of transferList."""
    try:
        return Transfer(
            transfer_id=int(item["transferId"]),
            transfer_date=date.fromisoformat(str(item["transferDate"])),
            account_counterparty=str(item.get("accountCounterparty") or ""),
            account_outgoing=str(item.get("accountOutgoing") or ""),
            variable_symbol=str(item.get("variableSymbol") or ""),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise ComgateError(f"Comgate sent a transfer this client cannot read: {dict(item)!r}") from exc


def parse_row(item: Mapping[str, Any]) -> TransferRow:
    """One row of singleTransfer."""
    by_key = {_key(str(k)): v for k, v in item.items()}

    def field(name: str) -> Any:
        return next((by_key[k] for k in ROW_FIELDS[name] if k in by_key), None)

    try:
        row_type = RowType(int(field("type")))
    except (TypeError, ValueError) as exc:
        raise ComgateError(f"Comgate sent a transfer row of unknown type: {dict(item)!r}") from exc
    return TransferRow(
        row_type=row_type,
        trans_id=_text(field("trans_id")),
        ref_id=_text(field("ref_id")),
        payer_variable_symbol=_text(field("payer_vs")),
        currency=_text(field("currency")),
        confirmed_amount=parse_amount(field("confirmed")),
        transferred_amount=parse_amount(field("transferred")),
        fee=parse_amount(field("fee")),
        paid_at=parse_local_datetime(field("paid_at")),
        method=_text(field("method")),
        label=_text(field("label")),
    )
