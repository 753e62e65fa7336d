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
"ID od klienta", "Variabilní symbol platby", "Měna", "Potvrzená částka", "Převedená částka",
"Poplatek celkem", "Datum zaplacení", ...); they are read regardless of case and diacritics, amounts
with a decimal point or a decimal comma, times as `2023-08-08 01:01:08` or `27.03.2026 09:16`.
Transferred = confirmed - fee on every row. A transfer carries no currency of its own (sdk-php
`src/Entity/Transfer.php`): its rows' `Měna` tells it; the payout account is only a cross-check.

Errors come back as an HTTP status with `{"code": <int>, "message": "..."}` (code 0 means OK).

    ComgateError              the API refused or failed (status, code and message of the answer)
    MissingCredential         (backoffice.integrations.credentials) no merchant id / secret

Network errors, 429 and 5xx are retried (backoffice.integrations.retry) after their `Retry-After`, else
with exponential backoff.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from backoffice.integrations.comgate_model import (
    ComgateError,
    RowType,
    Transfer,
    TransferRow,
    parse_amount,
    parse_local_datetime,
    parse_row,
    parse_transfer,
)
from backoffice.integrations.credentials import secret_value
from backoffice.integrations.retry import ADDED_JITTER, Attempt, RetryPolicy
from backoffice.settings import Settings

__all__ = [
    "ComgateClient",
    "ComgateCredentials",
    "ComgateError",
    "RowType",
    "Transfer",
    "TransferRow",
    "comgate_credentials",
    "currency_of_account",
    "normalize_account",
    "parse_amount",
    "parse_local_datetime",
    "parse_row",
    "parse_transfer",
]

logger = logging.getLogger(__name__)

MAX_RETRY_AFTER_SECONDS = 120.0
RETRYABLE_STATUSES = frozenset({429, *range(500, 600)})


@dataclass(frozen=True)
class ComgateCredentials:
    """Merchant id and secret of the Comgate shop."""

    merchant: str
    secret: str


def comgate_credentials(settings: Settings) -> ComgateCredentials:
    """Merchant id and secret from Prefect Secret blocks, else settings; fails naming what is missing."""
    secret = settings.comgate_secret.get_secret_value() if settings.comgate_secret else None
    return ComgateCredentials(
        merchant=secret_value("comgate-merchant", settings.comgate_merchant, "BACKOFFICE_COMGATE_MERCHANT"),
        secret=secret_value("comgate-secret", secret, "BACKOFFICE_COMGATE_SECRET"),
    )


CZECH_IBAN = re.compile(r"CZ\d{2}(\d{4})(\d{6})(\d{10})")
DOMESTIC_ACCOUNT = re.compile(r"(?:(\d{1,6})-)?(\d{1,10})/(\d{4})")


def normalize_account(account: str) -> str:
    """An account as `prefix-number/bank` without leading zeros, so a Czech IBAN equals its domestic form.

    Comgate's examples print accounts as `5637796002/5500`; settings may hold either form.
    """
    text = "".join(account.split()).upper()
    if iban := CZECH_IBAN.fullmatch(text):
        bank, prefix, number = iban.groups()
    elif domestic := DOMESTIC_ACCOUNT.fullmatch(text):
        prefix, number, bank = domestic.group(1) or "", domestic.group(2), domestic.group(3)
    else:
        return text.lstrip("0")
    return f"{prefix.lstrip('0')}-{number.lstrip('0')}/{bank}"


def currency_of_account(account: str, settings: Settings) -> str | None:
    """CZK or EUR when `account` is one of the configured payout accounts, else None."""
    accounts = {
        normalize_account(settings.comgate_payout_account_czk): "CZK",
        normalize_account(settings.comgate_payout_account_eur): "EUR",
    }
    return accounts.get(normalize_account(account))


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
        self.retry = RetryPolicy(
            RETRYABLE_STATUSES,
            max_attempts=max_attempts,
            backoff_base=backoff_base_seconds,
            jitter=ADDED_JITTER,
            retry_after_max=MAX_RETRY_AFTER_SECONDS,
        )
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
        items = _as_list(data, "singleTransfer")
        return [parse_row(item, f"transfer {transfer_id}, row {n}") for n, item in enumerate(items, 1)]

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
        try:
            response = self.retry.send(lambda: self._http.get(path), self._log_retry).response
        except httpx.TransportError as exc:
            raise ComgateError(f"Comgate is unreachable ({path}): {exc}") from exc
        if not response.is_success:
            raise _error_from(path, response)
        return response

    def _log_retry(self, attempt: Attempt) -> None:
        if attempt.delay is not None:
            logger.warning(
                "Comgate: %s; retry %d/%d in %.1f s",
                attempt.reason,
                attempt.number,
                self.retry.max_attempts - 1,
                attempt.delay,
            )


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
