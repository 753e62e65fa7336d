"""Client of the Comgate merchant API: the payouts (transfers) of a day and the rows of each payout.

We speak **API v2.0** (REST, JSON, HTTP Basic `merchant:secret`), the variant the official SDK
(comgate-payments/sdk-php) and apidoc.comgate.cz describe with concrete paths; the secret travels in
the Authorization header, never in a URL or a form body as in v1.0:

    GET /v2.0/transferList/date/{YYYY-MM-DD}.json
        → [{"transferId", "transferDate", "accountCounterparty", "accountOutgoing", "variableSymbol"}]
    GET /v2.0/singleTransfer/transferId/{transferId}.json
        → [{"typ": 1..5, <the columns of Comgate's CSV statement>}, ...]

`typ` is 1 payment, 2 refund, 3 monthly fee, 4 other fees / chargebacks / manual moves, 5 the
summary row. The other keys of a row are the column labels of Comgate's statement export ("ID ComGate",
"ID od klienta", "Variabilní symbol plátce", "Měna", "Potvrzená částka", "Převedená částka",
"Poplatek celkem", "Datum zaplacení", ...); they are read regardless of case and diacritics, and
amounts with a decimal point or a decimal comma. Transferred = confirmed - fee on every row.

Errors come back as an HTTP status with `{"code": <int>, "message": "..."}` (code 0 means OK).

    ComgateError              the API refused or failed (status, code and message of the answer)
    MissingCredential         (backoffice.integrations.credentials) no merchant id / secret

Network errors and 5xx are retried with exponential backoff, 429 after its `Retry-After`.
"""

from __future__ import annotations

import json
import logging
import random
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from backoffice.errors import BackofficeError
from backoffice.integrations.credentials import secret_value
from backoffice.settings import Settings

logger = logging.getLogger(__name__)

PRAGUE = ZoneInfo("Europe/Prague")
MAX_RETRY_AFTER_SECONDS = 120.0


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
class ComgateCredentials:
    """Merchant id and secret of the Comgate shop."""

    merchant: str
    secret: str


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


def comgate_credentials(settings: Settings) -> ComgateCredentials:
    """Merchant id and secret from Prefect Secret blocks, else settings; fails naming what is missing."""
    secret = settings.comgate_secret.get_secret_value() if settings.comgate_secret else None
    return ComgateCredentials(
        merchant=secret_value("comgate-merchant", settings.comgate_merchant, "BACKOFFICE_COMGATE_MERCHANT"),
        secret=secret_value("comgate-secret", secret, "BACKOFFICE_COMGATE_SECRET"),
    )


def normalize_account(account: str) -> str:
    """An account number compared without spaces, leading zeros of the prefix and case."""
    return "".join(account.split()).upper().lstrip("0")


def currency_of_account(account: str, settings: Settings) -> str | None:
    """CZK or EUR when `account` is one of the configured payout accounts, else None."""
    accounts = {
        normalize_account(settings.comgate_payout_account_czk): "CZK",
        normalize_account(settings.comgate_payout_account_eur): "EUR",
    }
    return accounts.get(normalize_account(account))


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


# --- the client ----------------------------------------------------------------------------------


class ComgateClient:
    """Typed calls of the Comgate merchant API v2.0 with retries; use as a context manager."""

    def __init__(
        self,
        base_url: str,
        credentials: ComgateCredentials,
        *,
        max_attempts: int = 5,
        backoff_base_seconds: float = 0.5,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.max_attempts = max_attempts
        self.backoff_base_seconds = backoff_base_seconds
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            auth=httpx.BasicAuth(credentials.merchant, credentials.secret),
            timeout=timeout_seconds,
            headers={"Accept": "application/json"},
        )

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> ComgateClient:
        """A client for `settings.comgate_base_url` with the resolved credentials."""
        return cls(settings.comgate_base_url, comgate_credentials(settings), **options)

    def __enter__(self) -> ComgateClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def transfer_list(self, day: date) -> list[Transfer]:
        """The payouts Comgate made on `day` (all currencies)."""
        data = self._get_json(f"/v2.0/transferList/date/{day.isoformat()}.json")
        return [parse_transfer(item) for item in _as_list(data, "transferList")]

    def single_transfer(self, transfer_id: int) -> list[TransferRow]:
        """The rows (payments, refunds, fees, summary) of payout `transfer_id`."""
        data = self._get_json(f"/v2.0/singleTransfer/transferId/{transfer_id}.json")
        return [parse_row(item) for item in _as_list(data, "singleTransfer")]

    def _get_json(self, path: str) -> Any:
        response = self._send(path)
        try:
            data = json.loads(response.content, parse_float=Decimal)
        except ValueError as exc:
            raise ComgateError(f"Comgate answered {path} with a body that is not JSON.") from exc
        if isinstance(data, dict) and "code" in data and str(data["code"]) != "0":
            # Some errors arrive with HTTP 200 and a non-zero code.
            raise ComgateError(f"Comgate refused {path}: code {data['code']}: {data.get('message', '')}")
        return data

    def _send(self, path: str) -> httpx.Response:
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._http.get(path)
            except httpx.TransportError as exc:
                if attempt == self.max_attempts:
                    raise ComgateError(f"Comgate is unreachable ({path}): {exc}") from exc
                self._sleep(attempt, None, f"network error {exc!r}")
                continue
            retryable = response.status_code == 429 or response.status_code >= 500
            if not retryable:
                if response.is_success:
                    return response
                raise _error_from(path, response)
            if attempt == self.max_attempts:
                raise _error_from(path, response)
            self._sleep(attempt, response.headers.get("Retry-After"), f"HTTP {response.status_code}")
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, attempt: int, retry_after: str | None, reason: str) -> None:
        delay = _retry_after_seconds(retry_after)
        if delay is None:
            # Exponential backoff with jitter, so parallel runs do not retry in lockstep.
            delay = self.backoff_base_seconds * 2 ** (attempt - 1) * (1 + random.random() / 4)
        logger.warning("Comgate: %s; retry %d/%d in %.1f s", reason, attempt, self.max_attempts - 1, delay)
        time.sleep(delay)


def _retry_after_seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        return None  # an HTTP-date: fall back to our own backoff


def _as_list(data: Any, method: str) -> list[Mapping[str, Any]]:
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ComgateError(f"Comgate answered {method} with something other than a list of objects.")
    return data


def _error_from(path: str, response: httpx.Response) -> ComgateError:
    try:
        body = response.json()
        detail = f"code {body.get('code')}: {body.get('message')}" if isinstance(body, dict) else str(body)
    except ValueError:
        detail = response.text[:200] or response.reason_phrase
    hint = " Check BACKOFFICE_COMGATE_MERCHANT / _SECRET." if response.status_code in (401, 403) else ""
    return ComgateError(
        f"Comgate answered {path} with HTTP {response.status_code} ({detail}).{hint}",
        http_status=response.status_code,
    )
