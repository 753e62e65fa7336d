"""The fake Shoptet's inspectable state and its wire-format helpers (envelope, errors, paging)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

JSONObject = dict[str, Any]
MAX_ITEMS_PER_PAGE = 50


@dataclass(frozen=True)
class StockMovement:
    """One applied `amountChange` of the stock-movement endpoint."""

    stock_id: int
    product_code: str
    amount_change: Decimal
    at: datetime


@dataclass(frozen=True)
class RequestRecord:
    """A request the fake answered (after faults), for tests that count attempts."""

    method: str
    path: str
    status: int


@dataclass
class FakeShoptetState:
    """Everything the fake serves and every change it received; tests read and edit it directly."""

    tokens: set[str]
    invoices: dict[str, JSONObject] = field(default_factory=dict)  # code -> detail with items
    orders: dict[str, JSONObject] = field(default_factory=dict)  # code -> detail with every include
    stock: dict[int, dict[str, Decimal]] = field(default_factory=dict)  # stock id -> code -> amount
    stock_ledger: list[StockMovement] = field(default_factory=list)
    status_changes: list[tuple[str, int]] = field(default_factory=list)  # (order code, new status id)
    requests: list[RequestRecord] = field(default_factory=list)
    max_concurrency_seen: int = 0

    def count(self, method: str, path_prefix: str, status: int | None = None) -> int:
        """How many answered requests match `method`, `path_prefix` and (optionally) `status`."""
        matching = [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]
        return sum(1 for r in matching if status is None or r.status == status)


class Gate:
    """Holds the fake's requests under `path_prefix` until `open()` (from any thread).

    A held request counts as in flight, so a test sees how many requests its clients keep open
    at once without making the fake slow by sleeping.
    """

    def __init__(self, path_prefix: str) -> None:
        self.path_prefix = path_prefix
        self.held = 0
        self._open = False
        self._lock = threading.Lock()
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def matches(self, path: str) -> bool:
        """Whether a request to `path` waits at this gate."""
        return path.startswith(self.path_prefix)

    async def wait(self) -> None:
        """Wait (on the server's loop) until the gate is open."""
        event = asyncio.Event()
        with self._lock:
            if self._open:
                return
            self._waiting.append((asyncio.get_running_loop(), event))
            self.held += 1
        try:
            await event.wait()
        finally:
            with self._lock:
                self.held -= 1

    def open(self) -> None:
        """Let every held request and every later one through."""
        with self._lock:
            self._open, waiting, self._waiting = True, self._waiting, []
        for loop, event in waiting:
            loop.call_soon_threadsafe(event.set)


def envelope(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    """Shoptet's response envelope around `data`."""
    body = {"data": data, "errors": None, "metadata": {"requestId": uuid.uuid4().hex}}
    return JSONResponse(body, status_code=status, headers=headers)


def error_response(
    status: int,
    error_code: str,
    message: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Shoptet's error envelope: `data` null, one entry in `errors`."""
    body = {
        "data": None,
        "errors": [{"errorCode": error_code, "message": message, "instance": instance}],
        "metadata": {"requestId": uuid.uuid4().hex},
    }
    return JSONResponse(body, status_code=status, headers=headers)


class BadRequest(Exception):
    """Raised by handlers for invalid input; answered as 400 `invalid-request-data`."""

    def __init__(self, message: str, instance: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.instance = instance


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"Parameter '{name}' must be an integer, got '{raw}'.", instance=name) from None


def paged(request: Request, key: str, items: list[JSONObject]) -> JSONObject:
    """`{key: <this page>, "paginator": {...}}` for `page` / `itemsPerPage` (max 50) of `items`."""
    page = _int_param(request, "page", 1)
    per_page = _int_param(request, "itemsPerPage", 20)
    if page < 1 or not 1 <= per_page <= MAX_ITEMS_PER_PAGE:
        raise BadRequest(f"page must be >= 1 and itemsPerPage within 1..{MAX_ITEMS_PER_PAGE}.")
    total = len(items)
    page_count = max(1, -(-total // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    paginator = {
        "totalCount": total,
        "page": page,
        "pageCount": page_count,
        "itemsOnPage": len(chunk),
        "itemsPerPage": per_page,
    }
    return {key: chunk, "paginator": paginator}
