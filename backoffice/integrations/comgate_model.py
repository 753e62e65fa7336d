"""What the Comgate merchant API sends, as typed values: transfers, transfer rows, and its errors.

singleTransfer rows carry `typ` (1 payment, 2 refund, 3 monthly fee, 4 other fees / chargebacks /
manual moves, 5 summary) and the column labels of Comgate's statement export ("ID ComGate",
"ID od klienta", "Variabilní symbol platby", "Měna", "Potvrzená částka", "Převedená částka",
"Poplatek celkem", "Datum zaplacení", ...; sinfin/comgate_ruby `test/fixtures/csvs.zip`). Labels are
matched regardless of case, spaces and diacritics; the payer's variable symbol is also read from the
spellings other exports use ("Variabilní symbol plátce", "VS platby"). Amounts may use a decimal point
or a decimal comma ("129,00"); times are Prague local time as `2023-08-08 01:01:08` or
`27.03.2026 09:16`. A value that still cannot be read fails naming the row and the column. The sum
row prints "-" where it has no value; that reads as empty.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from typing import Any, TypeVar

from backoffice.calendar import PRAGUE
from backoffice.errors import BackofficeError

T = TypeVar("T")


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
    # The statement CSV's own label first; the others are spellings seen in other exports and stubs.
    "payer_vs": ("variabilnisymbolplatby", "variabilnisymbolplatce", "vsplatby", "vs"),
    "currency": ("mena", "curr", "currency"),
    "confirmed": ("potvrzenacastka", "confirmedamount"),
    "transferred": ("prevedenacastka", "transferredamount"),
    "fee": ("poplatekcelkem", "fee", "feetotal"),
    "paid_at": ("datumzaplaceni", "paiddate"),
    "method": ("metoda", "method"),
    "label": ("produkt", "popis", "label"),
}


def parse_amount(value: Any) -> Decimal:
    """An exact decimal from `"613,00"`, `"613.00"`, `"-1 250,50"`, `613` or a JSON number; empty is 0."""
    if value is None or value == "":
        return Decimal("0")
    if isinstance(value, Decimal | int):
        return Decimal(value)
    # str.split() also drops the non-breaking spaces a Czech export puts between thousands.
    text = "".join(str(value).split()).replace(",", ".")
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise ComgateError(f"Comgate sent an amount that is not a number: {value!r}") from exc


# Every form the sources show: the statement CSV (sinfin/comgate_ruby) prints ISO with seconds, a
# portal export prints Czech day-first dates to the minute.
LOCAL_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%Y-%m-%d",
)


def parse_local_datetime(value: Any) -> datetime | None:
    """Comgate's `2023-08-08 01:01:08` or `27.03.2026 09:16` (Prague time) as aware UTC; empty is None."""
    text = str(value).strip() if value is not None else ""
    if text in ("", "-"):
        return None
    for pattern in LOCAL_TIME_FORMATS:
        try:
            parsed = datetime.strptime(text, pattern)
        except ValueError:
            continue
        return parsed.replace(tzinfo=PRAGUE).astimezone(UTC)
    try:
        parsed = datetime.fromisoformat(text)  # an explicit offset, should Comgate ever send one
    except ValueError as exc:
        raise ComgateError(f"Comgate sent a time in no format it uses: {value!r}") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=PRAGUE)).astimezone(UTC)


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return None if text in ("", "-") else text  # the sum row prints "-" for "nothing here"


def _day(text: str) -> date:
    # The API's examples print ISO days; exports print "28.03.2026".
    text = text.strip()
    return datetime.strptime(text, "%d.%m.%Y").date() if "." in text else date.fromisoformat(text)


def parse_transfer(item: Mapping[str, Any]) -> Transfer:
    """One item of transferList."""
    try:
        return Transfer(
            transfer_id=int(item["transferId"]),
            transfer_date=_day(str(item["transferDate"])),
            account_counterparty=str(item.get("accountCounterparty") or ""),
            account_outgoing=str(item.get("accountOutgoing") or ""),
            variable_symbol=str(item.get("variableSymbol") or ""),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise ComgateError(f"Comgate sent a transfer this client cannot read: {dict(item)!r}") from exc


def parse_row(item: Mapping[str, Any], where: str = "") -> TransferRow:
    """One row of singleTransfer; `where` (e.g. "transfer 5211530, row 3") names it in errors."""
    by_key = {_key(str(k)): (str(k), v) for k, v in item.items()}
    place = where or "a transfer row"

    def field(name: str) -> Any:
        return next((by_key[k][1] for k in ROW_FIELDS[name] if k in by_key), None)

    def read(name: str, parse: Callable[[Any], T]) -> T:
        try:
            return parse(field(name))
        except ComgateError as exc:
            label = next((by_key[k][0] for k in ROW_FIELDS[name] if k in by_key), name)
            trans_id = _text(field("trans_id"))
            who = f"{place} (ID ComGate {trans_id})" if trans_id else place
            raise ComgateError(f"{who}, column {label!r}: {exc.message}") from exc

    try:
        row_type = RowType(int(field("type")))
    except (TypeError, ValueError) as exc:
        raise ComgateError(f"Comgate sent {place} of unknown type: {dict(item)!r}") from exc
    return TransferRow(
        row_type=row_type,
        trans_id=_text(field("trans_id")),
        ref_id=_text(field("ref_id")),
        payer_variable_symbol=_text(field("payer_vs")),
        currency=(_text(field("currency")) or "").upper() or None,
        confirmed_amount=read("confirmed", parse_amount),
        transferred_amount=read("transferred", parse_amount),
        fee=read("fee", parse_amount),
        paid_at=read("paid_at", parse_local_datetime),
        method=_text(field("method")),
        label=_text(field("label")),
    )
