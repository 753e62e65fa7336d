"""The HTTP layer of the Shoptet client: Shoptet's limits, retries, its envelope and paging.

At most 3 concurrent connections per token (the process's slots, and inside Prefect runs the
global concurrency limit `shoptet-api` shared by every flow run: `shoptet_slots`, plus the pool
limit), pacing by the leaky bucket's `X-RateLimit-Bucket-Filling` (`shoptet_bucket`), `Retry-After`
(seconds or an HTTP date) on 429, bounded exponential backoff with jitter on 5xx/423/network
errors (the shared policy of `backoffice.integrations.retry`), and a non-idempotent mode for writes
that must never be repeated blindly. Every request carries Shoptet's `Content-Type`.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

import httpx

from backoffice.errors import BackofficeError
from backoffice.integrations.retry import FULL_JITTER, Attempt, RetryPolicy
from backoffice.integrations.shoptet_bucket import BUCKET_HEADER, BucketPacer
from backoffice.integrations.shoptet_slots import (
    MAX_CONNECTIONS_PER_TOKEN as MAX_CONNECTIONS_PER_TOKEN,  # re-exported: `shoptet` names it
)
from backoffice.integrations.shoptet_slots import ConnectionSlots

JSONObject = dict[str, Any]
T = TypeVar("T")
R = TypeVar("R")

TOKEN_HEADER = "Shoptet-Private-API-Token"
TOKEN_BLOCK = "shoptet-api-token"
TOKEN_ENV = "BACKOFFICE_SHOPTET_API_TOKEN"
# The OpenAPI marks Content-Type required on every endpoint, GETs included; the official SDK
# (shoptet/api-sdk src/Sdk.php) sends this value on every request.
CONTENT_TYPE = "application/vnd.shoptet.v1.0"
MAX_ITEMS_PER_PAGE = 50
RETRYABLE_STATUSES = frozenset({423, 429, 500, 502, 503, 504})
# Statuses that say the request was not processed at all: safe to repeat even a stock movement.
NOT_PROCESSED_STATUSES = frozenset({423, 429})


class ShoptetError(BackofficeError):
    """Shoptet answered with errors; `errors` holds its `{errorCode, message, instance}` entries."""

    code = "shoptet_error"

    def __init__(
        self, message: str, *, http_status: int | None = None, errors: list[JSONObject] | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.errors = errors or []


class ShoptetAuthError(ShoptetError):
    code = "shoptet_auth_error"


class ShoptetNotFound(ShoptetError):
    code = "shoptet_not_found"


class ShoptetUnavailable(ShoptetError):
    code = "shoptet_unavailable"


class ShoptetOutcomeUnknown(ShoptetError):
    code = "shoptet_outcome_unknown"


@dataclass
class RequestStats:
    """What the client spent: requests sent, retries, and seconds inside HTTP calls (summed over threads)."""

    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, seconds: float, retried: bool) -> None:
        with self._lock:
            self.requests += 1
            self.retries += int(retried)
            self.seconds += seconds


def _error_message(errors: list[JSONObject]) -> str:
    return "; ".join(f"{e.get('errorCode', 'error')}: {e.get('message', '')}".strip() for e in errors)


class ShoptetHttp:
    """Sends requests within Shoptet's limits; `ShoptetClient` adds the endpoints."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slots = ConnectionSlots(token)
        # `sleep` and `clock` together: a test that moves a clock of its own paces deterministically.
        self.bucket = BucketPacer(sleep=sleep, clock=clock)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            # The client's Content-Type wins over the `application/json` httpx adds for `json=`.
            headers={TOKEN_HEADER: token, "Accept": "application/json", "Content-Type": CONTENT_TYPE},
            timeout=timeout,
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS_PER_TOKEN),
        )
        self.retry = RetryPolicy(
            RETRYABLE_STATUSES,
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            jitter=FULL_JITTER,
            retry_after_max=backoff_max,
            sleep=sleep,
        )
        self.stats = RequestStats()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # --- the HTTP layer: limits, retries, the envelope --------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = True,
    ) -> Any:
        """Send one request and return the envelope's `data`; raise `ShoptetError` on `errors`.

        `idempotent=False` (stock movements) retries only what Shoptet surely did not process
        (429/423, connection refused); a timeout or 5xx then raises `ShoptetOutcomeUnknown`.
        """

        def send() -> httpx.Response:
            self.bucket.pace()
            with self.slots.slot():
                response = self._http.request(method, path, params=params, json=json)
            self.bucket.observe(response.headers.get(BUCKET_HEADER))
            return response

        def observe(attempt: Attempt) -> None:
            self.stats.add(attempt.seconds, retried=attempt.will_retry)
            if not idempotent:
                self._refuse_unknown_outcome(method, path, attempt)

        try:
            final = self.retry.send(send, observe)
        except httpx.TransportError as exc:
            raise ShoptetUnavailable(
                f"{method} {path}: Shoptet unreachable after {self.retry.max_attempts} attempts ({exc!r})."
            ) from exc
        return self._unwrap(method, path, final.response, attempts=final.number)

    def _refuse_unknown_outcome(self, method: str, path: str, attempt: Attempt) -> None:
        """Raise `ShoptetOutcomeUnknown` when a write may have been applied and must not be repeated."""
        outcome = attempt.outcome
        if isinstance(outcome, httpx.TransportError):
            sent = not isinstance(outcome, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
            if sent:
                raise ShoptetOutcomeUnknown(
                    f"{method} {path}: no answer from Shoptet ({outcome!r}); the change may or may not "
                    "have been applied. Check it in Shoptet before repeating it."
                ) from outcome
        elif attempt.retryable and outcome.status_code not in NOT_PROCESSED_STATUSES:
            raise ShoptetOutcomeUnknown(
                f"{method} {path}: Shoptet answered {outcome.status_code}; the change may or may not have "
                "been applied. Check it in Shoptet before repeating it.",
                http_status=outcome.status_code,
                errors=self._errors_of(outcome),
            )

    @staticmethod
    def _body(response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    @staticmethod
    def _errors_in(body: Any) -> list[JSONObject]:
        errors = body.get("errors") if isinstance(body, dict) else None
        return list(errors) if isinstance(errors, list) else []

    def _errors_of(self, response: httpx.Response) -> list[JSONObject]:
        return self._errors_in(self._body(response))

    def _unwrap(self, method: str, path: str, response: httpx.Response, *, attempts: int) -> Any:
        status = response.status_code
        body = self._body(response)  # parsed once: a detail is a few kB and there are thousands
        errors = self._errors_in(body)
        if status >= 400 or errors:
            detail = _error_message(errors) or response.text[:200] or response.reason_phrase
            message = f"Shoptet {method} {path} failed ({status}): {detail.rstrip('.')}"
            kind: type[ShoptetError] = ShoptetError
            if status in (401, 403):
                kind = ShoptetAuthError
                message += f". Check the API token ({TOKEN_ENV} or the Prefect Secret block '{TOKEN_BLOCK}')."
            elif status == 404:
                kind = ShoptetNotFound
            elif status in RETRYABLE_STATUSES:
                kind = ShoptetUnavailable
                message += f" (after {attempts} attempts)"
            raise kind(message, http_status=status, errors=errors)
        if response.content and not isinstance(body, dict):
            raise ShoptetError(
                f"Shoptet {method} {path} answered {status} without its JSON envelope: "
                f"{response.text[:160]!r}",
                http_status=status,
            )
        return body.get("data") if body else None

    def paginate(self, path: str, key: str, params: dict[str, Any] | None = None) -> Iterator[JSONObject]:
        """Every item of list `data[key]` over all pages (`data.paginator`), page by page."""
        page = 1
        while True:
            query = {**(params or {}), "page": page, "itemsPerPage": MAX_ITEMS_PER_PAGE}
            data = self.request("GET", path, params=query) or {}
            yield from data.get(key) or []
            paginator = data.get("paginator") or {}
            if page >= int(paginator.get("pageCount") or 0):
                return
            page += 1

    def concurrently(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`[fn(item) for item in items]`, run on as many threads as the token may hold connections."""
        # The caller's context goes along: inside a run, the threads reach the same Prefect API.
        context = contextvars.copy_context()
        with ThreadPoolExecutor(MAX_CONNECTIONS_PER_TOKEN, thread_name_prefix="shoptet") as pool:
            return list(pool.map(lambda item: context.copy().run(fn, item), items))
