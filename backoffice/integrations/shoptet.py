"""A typed client of the Shoptet REST API (https://api.docs.shoptet.com), used by every Shoptet job.

Errors it raises (all are `backoffice.errors.BackofficeError`):

    ShoptetError                  a response with `errors`, or an HTTP error without retry
    ├── ShoptetAuthError          401/403: the token is missing, wrong or lacks the scope
    ├── ShoptetNotFound           404: no such invoice/order/stock
    ├── ShoptetUnavailable        5xx/423/429/network errors still failing after every attempt
    └── ShoptetOutcomeUnknown     a non-idempotent write (stock movement) whose result is unknown
    MissingCredential             (from `credentials`) no token in the Secret block or environment

Shoptet's limits are honoured in `shoptet_http`, not by the callers: at most 3 concurrent
connections per token, pacing by the leaky bucket, `Retry-After` on 429, bounded exponential backoff
on 5xx/423/network errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from backoffice.integrations.credentials import MissingCredential, secret_value
from backoffice.integrations.shoptet_http import (
    MAX_CONNECTIONS_PER_TOKEN,
    TOKEN_BLOCK,
    TOKEN_ENV,
    JSONObject,
    RequestStats,
    ShoptetAuthError,
    ShoptetError,
    ShoptetHttp,
    ShoptetNotFound,
    ShoptetOutcomeUnknown,
    ShoptetUnavailable,
)
from backoffice.settings import Settings, get_settings

__all__ = [
    "MAX_CONNECTIONS_PER_TOKEN",
    "JSONObject",
    "MissingCredential",
    "RequestStats",
    "ShoptetAuthError",
    "ShoptetClient",
    "ShoptetError",
    "ShoptetNotFound",
    "ShoptetOutcomeUnknown",
    "ShoptetUnavailable",
    "format_time",
    "parse_time",
]


def format_time(value: datetime) -> str:
    """Shoptet's time format, `2024-05-06T10:15:00+0200` (offset without a colon)."""
    if value.tzinfo is None:
        raise ValueError("Shoptet times need an aware datetime")
    return value.strftime("%Y-%m-%dT%H:%M:%S%z")


def parse_time(value: str) -> datetime:
    """An aware datetime from `2024-05-06T10:15:00+0200` (a `+02:00` offset is accepted too)."""
    parsed = datetime.fromisoformat(value)  # 3.11+ reads `+0200`; several times faster than strptime
    if parsed.tzinfo is None:
        raise ValueError(f"Shoptet time without an offset: {value!r}")
    return parsed


class ShoptetClient(ShoptetHttp):
    """Thread-safe, synchronous Shoptet client; use as a context manager or call `close()`.

    `ShoptetClient(base_url, token, *, timeout=30.0, max_attempts=5, backoff_base=0.5,
    backoff_max=30.0, sleep=time.sleep, clock=time.monotonic)`, or `ShoptetClient.from_settings()`
    for the configured one.
    """

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **options: Any) -> ShoptetClient:
        """A client for `settings.shoptet_base_url` with the token from the Secret block or env."""
        settings = settings or get_settings()
        configured = settings.shoptet_api_token.get_secret_value() if settings.shoptet_api_token else None
        token = secret_value(TOKEN_BLOCK, configured, TOKEN_ENV)
        return cls(settings.shoptet_base_url, token, **options)

    # --- invoices ---------------------------------------------------------------------------

    def list_invoices(self, creation_from: datetime, creation_to: datetime) -> Iterator[JSONObject]:
        """Invoice list items (no `items`) created in [creation_from, creation_to], all pages."""
        params = {"creationTimeFrom": format_time(creation_from), "creationTimeTo": format_time(creation_to)}
        return self.paginate("/api/invoices", "invoices", params)

    def get_invoice(self, code: str) -> JSONObject:
        """The invoice detail with `items`, billing address and billing method."""
        data = self.request("GET", f"/api/invoices/{code}")
        invoice: JSONObject = data["invoice"]
        return invoice

    def get_invoices(self, codes: Iterable[str]) -> list[JSONObject]:
        """Details of many invoices, fetched concurrently within the connection limit, in order."""
        return self.concurrently(self.get_invoice, codes)

    # --- orders and stock (the warehouse jobs) ---------------------------------------------

    def list_orders(self, status_id: int) -> Iterator[JSONObject]:
        """Order list items in status `status_id` (e.g. -2 "Vyřizuje se"), all pages."""
        return self.paginate("/api/orders", "orders", {"statusId": status_id})

    def get_order(self, code: str, include: str = "stockLocation,notes") -> JSONObject:
        """The order detail with items; `include` adds warehouse positions and notes."""
        data = self.request("GET", f"/api/orders/{code}", params={"include": include} if include else None)
        order: JSONObject = data["order"]
        return order

    def get_orders(self, codes: Iterable[str], include: str = "stockLocation,notes") -> list[JSONObject]:
        """Details of many orders, fetched concurrently within the connection limit, in order."""
        return self.concurrently(lambda code: self.get_order(code, include), codes)

    def set_order_status(self, code: str, status_id: int, *, suppress_email: bool = False) -> None:
        """Move order `code` to status `status_id` (idempotent, so retried freely).

        Shoptet sends the customer the status's e-mail, if the shop configured one, unless
        `suppress_email` (its `?suppressEmailSending=true`).
        """
        params = {"suppressEmailSending": "true"} if suppress_email else None
        body = {"data": {"statusId": status_id}}
        self.request("PATCH", f"/api/orders/{code}/status", params=params, json=body)

    def stock_movement(self, stock_id: int, product_code: str, amount_change: Decimal | int) -> None:
        """Add `amount_change` (negative: remove) of `product_code` to stock `stock_id`.

        Not idempotent: raises `ShoptetOutcomeUnknown` when Shoptet may have applied it but did
        not say so (timeout, 5xx) — the caller must not repeat it blindly.
        """
        amount = int(amount_change) if amount_change == int(amount_change) else float(amount_change)
        body = {"data": [{"productCode": product_code, "amountChange": amount}]}
        self.request("PATCH", f"/api/stocks/{stock_id}/movements", json=body, idempotent=False)
