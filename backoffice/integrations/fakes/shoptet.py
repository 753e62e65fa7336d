"""A fake Shoptet REST API (an ASGI app) for tests and the sandbox, speaking the real wire format.

    fake = FakeShoptet(seed=7, days=[date(2024, 5, 6)], invoices_per_day=30)
    with serve(fake.app) as base_url: ...          # tests/servers.py
    fake.fail_next("/api/invoices", 503, times=2)  # the next two matching requests fail
    gate = fake.hold("/api/invoices/")             # hold them (in flight) until gate.open()
    fake.state.stock_ledger                        # what the code under test changed

It checks the `Shoptet-Private-API-Token` header (missing → 401, unknown → 403) and the required
`Content-Type` (missing or not JSON → 400), allows 3 concurrent requests per token (more → 429),
keeps Shoptet's leaky bucket per token (`X-RateLimit-Bucket-Filling` on every answer; full → 429
with `Retry-After` as an HTTP date), pages with `page`/`itemsPerPage` (silently capped at 50) and
answers every request in the `{"data", "errors", "metadata"}` envelope.
Run it alone with `python -m backoffice.integrations.fakes.shoptet --port 8081`.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from backoffice.calendar import PRAGUE
from backoffice.integrations.fakes.shoptet_data import generate_invoices, invoice_list_item
from backoffice.integrations.fakes.shoptet_orders import generate_orders, generate_stock, order_routes
from backoffice.integrations.fakes.shoptet_state import (
    BadRequest,
    FakeShoptetState,
    Gate,
    JSONObject,
    LeakyBucket,
    RequestRecord,
    envelope,
    error_response,
    paged,
)

DEFAULT_TOKEN = "fake-shoptet-token"
TOKEN_HEADER = b"shoptet-private-api-token"
MAX_CONCURRENT_PER_TOKEN = 3
# What the OpenAPI's default (`application/json`) and the official SDK (`application/vnd.shoptet.v1.0`)
# send; the spec lists no 415, and 400 is its answer to a request that fails validation.
CONTENT_TYPES = ("application/json", "application/vnd.shoptet.v1.0")
BUCKET_HEADER = "X-RateLimit-Bucket-Filling"


@dataclass
class _Fault:
    path_prefix: str
    method: str | None
    times: int
    status: int = 0
    retry_after: int | None = None
    http_date: bool = False
    delay: float = 0.0

    def retry_header(self) -> dict[str, str] | None:
        if self.retry_after is None:
            return None
        if not self.http_date:
            return {"Retry-After": str(self.retry_after)}
        moment = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=self.retry_after)
        return {"Retry-After": format_datetime(moment, usegmt=True)}

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and path.startswith(self.path_prefix) and self.method in (None, method)


def _parse_time(raw: str, name: str) -> datetime:
    try:
        return datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        # A '+' sent without URL-encoding arrives as a space, and lands here too.
        raise BadRequest(f"'{name}' must look like 2024-05-06T10:15:00+0200, got '{raw}'.", name) from None


def default_days(today: date | None = None) -> list[date]:
    """The 7 days before `today` in Prague (the sandbox's "yesterday" always has data)."""
    today = today or datetime.now(PRAGUE).date()
    return [today - timedelta(days=n) for n in range(7, 0, -1)]


class FakeShoptet:
    """The fake's state, its fault injection, and the ASGI app (`.app`) serving them."""

    def __init__(
        self,
        seed: int = 1,
        *,
        token: str = DEFAULT_TOKEN,
        days: Sequence[date] | None = None,
        invoices_per_day: int = 20,
        eur_share: float = 0.2,
        orders: int = 30,
        latency: float = 0.0,
    ) -> None:
        days = list(days or default_days())
        self.state = FakeShoptetState(
            tokens={token},
            invoices=generate_invoices(seed, days, invoices_per_day, eur_share),
            orders=generate_orders(seed, orders, max(days)),
            stock=generate_stock(seed),
        )
        self.token = token
        self.latency = latency
        self.bucket = LeakyBucket()
        self._faults: list[_Fault] = []
        self._gates: list[Gate] = []
        self._in_flight: dict[str, int] = {}
        self._index: tuple[int, list[datetime], list[str]] = (-1, [], [])
        self._router = Starlette(
            routes=[
                Route("/api/invoices", self._list_invoices, methods=["GET"]),
                Route("/api/invoices/{code}", self._get_invoice, methods=["GET"]),
                *order_routes(self.state),
            ],
            exception_handlers={BadRequest: self._bad_request, HTTPException: self._http_error},
        )

    # --- what tests call --------------------------------------------------------------------

    def fail_next(
        self,
        path_prefix: str,
        status: int,
        times: int = 1,
        *,
        retry_after: int | None = None,
        http_date: bool = False,
        method: str | None = None,
    ) -> None:
        """Answer the next `times` requests under `path_prefix` with `status` (and `Retry-After`).

        `http_date=True` sends `Retry-After` as Shoptet does: the date `retry_after` seconds ahead.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        fault = _Fault(
            path_prefix, method, times, status=status, retry_after=retry_after, http_date=http_date
        )
        self._faults.append(fault)

    def delay_next(
        self, path_prefix: str, seconds: float, times: int = 1, *, method: str | None = None
    ) -> None:
        """Handle the next `times` matching requests normally but answer only after `seconds`.

        The change is applied before the delay, so a client that times out meets exactly the
        "outcome unknown" case (e.g. a stock movement that did happen).
        """
        self._faults.append(_Fault(path_prefix, method, times, delay=seconds))

    def hold(self, path_prefix: str) -> Gate:
        """Hold the requests under `path_prefix` (counted in flight) until the gate is opened."""
        gate = Gate(path_prefix)
        self._gates.append(gate)
        return gate

    def invoices_between(self, start: datetime, end: datetime) -> list[JSONObject]:
        """The invoice details created in [start, end], as the API would list them."""
        times, codes = self._invoice_index()
        lo, hi = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
        return [self.state.invoices[code] for code in codes[lo:hi]]

    @property
    def app(self) -> FakeShoptet:
        """The ASGI application (this object)."""
        return self

    # --- the ASGI entry: token, concurrency limit, faults -----------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._router(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        recorded = False

        async def recording_send(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start":
                # Recorded before the answer leaves, so a test sees it as soon as its client does.
                retry_after = dict(message.get("headers", [])).get(b"retry-after")
                record = RequestRecord(method, path, message["status"], retry_after and retry_after.decode())
                self.state.requests.append(record)
                recorded = True
            await send(message)

        headers = dict(scope["headers"])
        token = headers.get(TOKEN_HEADER, b"").decode()
        content_type = headers.get(b"content-type", b"").decode().split(";")[0].strip().lower()
        try:
            if not token:
                response = error_response(401, "missing-token", "Missing Shoptet-Private-API-Token.")
                await response(scope, receive, recording_send)
            elif token not in self.state.tokens:
                response = error_response(403, "invalid-token", "Invalid access token.")
                await response(scope, receive, recording_send)
            elif content_type not in CONTENT_TYPES:
                message = f"Header Content-Type must be one of {', '.join(CONTENT_TYPES)}."
                response = error_response(400, "invalid-content-type", message, instance="Content-Type")
                await response(scope, receive, recording_send)
            elif (filling := self.bucket.admit(token)) is None:
                retry = {"Retry-After": self.bucket.retry_at(token)}
                response = error_response(429, "too-many-requests", "Rate limit exceeded.", headers=retry)
                await response(scope, receive, recording_send)
            else:
                bucket_send = self._with_header(recording_send, BUCKET_HEADER, filling)
                await self._limited(token, method, path, scope, receive, bucket_send)
        finally:
            if not recorded:
                self.state.requests.append(RequestRecord(method, path, 500))

    async def _limited(
        self, token: str, method: str, path: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self._in_flight[token] = self._in_flight.get(token, 0) + 1
        released, outer_send = False, send

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._in_flight[token] -= 1

        async def counted_send(message: Message) -> None:
            # The request leaves the count before its last byte goes out: a client that read the
            # whole answer and sends its next request at once is never counted twice.
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                release()
            await outer_send(message)

        send = counted_send
        try:
            in_flight = self._in_flight[token]
            self.state.max_concurrency_seen = max(self.state.max_concurrency_seen, in_flight)
            if in_flight > MAX_CONCURRENT_PER_TOKEN:
                response: Response = error_response(
                    429, "too-many-requests", "Too many concurrent connections.", headers={"Retry-After": "1"}
                )
                await response(scope, receive, send)
                return
            for gate in self._gates:
                if gate.matches(path):
                    await gate.wait()
            fault = next((f for f in self._faults if f.matches(method, path)), None)
            if fault is not None:
                fault.times -= 1
                if fault.status:
                    await error_response(
                        fault.status, "injected-fault", "Injected by the test.", headers=fault.retry_header()
                    )(scope, receive, send)
                    return
            if self.latency:
                await asyncio.sleep(self.latency)
            await self._router(scope, receive, self._delayed(send, fault.delay if fault else 0.0))
        finally:
            release()

    @staticmethod
    def _with_header(send: Send, name: str, value: str) -> Send:
        async def header_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(name.lower().encode(), value.encode())]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return header_send

    @staticmethod
    def _delayed(send: Send, seconds: float) -> Send:
        if not seconds:
            return send

        async def delayed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(seconds)
            await send(message)

        return delayed_send

    async def _bad_request(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BadRequest)
        return error_response(400, "invalid-request-data", exc.message, instance=exc.instance)

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(
            exc.status_code, "not-found" if exc.status_code == 404 else "invalid-request", exc.detail
        )

    # --- invoices -----------------------------------------------------------------------------

    def _invoice_index(self) -> tuple[list[datetime], list[str]]:
        # Sorted once per set of invoices: listing 10,000 invoices page by page stays cheap.
        if self._index[0] != len(self.state.invoices):
            pairs = sorted(
                (datetime.strptime(i["creationTime"], "%Y-%m-%dT%H:%M:%S%z"), code)
                for code, i in self.state.invoices.items()
            )
            self._index = (len(self.state.invoices), [p[0] for p in pairs], [p[1] for p in pairs])
        return self._index[1], self._index[2]

    async def _list_invoices(self, request: Request) -> JSONResponse:
        params = request.query_params
        start = (
            _parse_time(params["creationTimeFrom"], "creationTimeFrom")
            if "creationTimeFrom" in params
            else None
        )
        end = _parse_time(params["creationTimeTo"], "creationTimeTo") if "creationTimeTo" in params else None
        times, codes = self._invoice_index()
        lo = bisect.bisect_left(times, start) if start else 0
        hi = bisect.bisect_right(times, end) if end else len(times)
        selected = codes[lo:hi]
        data = paged(request, "invoices", [{"code": c} for c in selected])
        data["invoices"] = [invoice_list_item(self.state.invoices[i["code"]]) for i in data["invoices"]]
        return envelope(data)

    async def _get_invoice(self, request: Request) -> JSONResponse:
        code = request.path_params["code"]
        invoice = self.state.invoices.get(code)
        if invoice is None:
            return error_response(404, "invoice-not-found", f"Invoice '{code}' not found.")
        return envelope({"invoice": invoice})


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a fake Shoptet: `python -m backoffice.integrations.fakes.shoptet --port 8081 --seed 1`."""
    import uvicorn

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument(
        "--day", type=date.fromisoformat, action="append", help="a day with invoices (repeatable)"
    )
    parser.add_argument("--invoices-per-day", type=int, default=20)
    parser.add_argument("--eur-share", type=float, default=0.2, help="share of invoices in EUR (0..1)")
    parser.add_argument("--orders", type=int, default=30)
    args: Any = parser.parse_args(argv)
    fake = FakeShoptet(
        args.seed,
        token=args.token,
        days=args.day,
        invoices_per_day=args.invoices_per_day,
        eur_share=args.eur_share,
        orders=args.orders,
    )
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
