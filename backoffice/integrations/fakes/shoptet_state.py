"""The fake Shoptet's inspectable state and its wire-format helpers (envelope, errors, paging, bucket)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
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
    retry_after: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When the fake answered (UTC): a test checks a client waited until its `Retry-After` date."""


@dataclass(frozen=True)
class StatusChange:
    """One accepted `PATCH /api/orders/{code}/status`, with its `suppressEmailSending` flag."""

    code: str
    status_id: int
    suppress_email: bool


@dataclass
class FakeShoptetState:
    """Everything the fake serves and every change it received; tests read and edit it directly."""

    tokens: set[str]
    invoices: dict[str, JSONObject] = field(default_factory=dict)  # code -> detail with items
    orders: dict[str, JSONObject] = field(default_factory=dict)  # code -> detail with every include
    stock: dict[int, dict[str, Decimal]] = field(default_factory=dict)  # stock id -> code -> amount
    stock_ledger: list[StockMovement] = field(default_factory=list)
    status_changes: list[tuple[str, int]] = field(default_factory=list)  # (order code, new status id)
    status_requests: list[StatusChange] = field(default_factory=list)
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


class LeakyBucket:
    """Shoptet's per-token leaky bucket: each request adds a drop, `drain` drops leave a second.

    `admit` answers the filling to report in `X-RateLimit-Bucket-Filling`, or None when the bucket
    is full (then the fake answers 429 with `retry_at()`, an HTTP date like Shoptet's).
    """

    def __init__(
        self, capacity: int = 200, drain: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity, self.drain = capacity, drain
        # A test gives a clock it moves itself, so the bucket drains only when the test says so.
        self.clock = clock
        self._levels: dict[str, tuple[float, float]] = {}  # token -> (level, clock time)
        self._lock = threading.Lock()

    def level(self, token: str) -> float:
        """The token's drops now."""
        with self._lock:
            level, at = self._levels.get(token, (0.0, self.clock()))
            return max(0.0, level - (self.clock() - at) * self.drain)

    def fill(self, token: str, level: float) -> None:
        """Set the token's drops (a test starts from a nearly full bucket)."""
        with self._lock:
            self._levels[token] = (level, self.clock())

    def admit(self, token: str) -> str | None:
        """Count one request in; its filling header, or None when the bucket has no room."""
        level = self.level(token)
        if level + 1 > self.capacity:
            return None
        self.fill(token, level + 1)
        return f"{int(level + 1)}/{self.capacity}"

    def retry_at(self, token: str) -> str:
        """The HTTP date when one drop's room is free again."""
        wait = (self.level(token) + 1 - self.capacity) / self.drain
        # Rounded up to the next whole second: an HTTP date has no fractions.
        moment = datetime.now(UTC) + timedelta(seconds=max(wait, 0.0) + 1)
        return format_datetime(moment.replace(microsecond=0), usegmt=True)


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
    """`{key: <this page>, "paginator": {...}}` for `page` / `itemsPerPage` (capped at 50) of `items`."""
    page = _int_param(request, "page", 1)
    # Like Shoptet: a larger itemsPerPage silently gets the maximum (OpenAPI, "Paging").
    per_page = min(_int_param(request, "itemsPerPage", 20), MAX_ITEMS_PER_PAGE)
    if page < 1 or per_page < 1:
        raise BadRequest("page and itemsPerPage must be >= 1.")
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
