"""The one retry policy of our HTTP clients (Shoptet, Comgate): what is retried, and how long to wait.

A request is retried on a network error (`httpx.TransportError`) and on a status of the client's
`retry_statuses` (429 and 5xx), at most `max_attempts` times in all. Before the next attempt it waits
the answer's `Retry-After`, in either form RFC 9110 allows: seconds, or an HTTP date (Shoptet sends
`Mon, 01 Jul 2024 12:01:11 GMT`), as the seconds until then; clamped to `[0, retry_after_max]`.
Else an exponential backoff `min(backoff_max, backoff_base * 2 ** (attempt - 1))`
scaled by a random factor from `jitter`, so parallel runs do not retry in lockstep.

What stays with each client: mapping the final answer or network error to its own exception, and
vetoing a retry, e.g. a Shoptet stock movement that must not be repeated blindly. `send` hands every
attempt to the client's `observe` callback, which may raise to stop; a final network error is
re-raised as is, and the final response (success or not) is returned for the client to read.

Hand-written rather than `tenacity` (not a dependency yet): both clients retry on a *response* and
wait by its `Retry-After`, count attempts for their stats and error messages, and veto retries of
writes; with tenacity that is custom `retry`/`wait`/`before_sleep` callables plus unwrapping
`RetryError`, no shorter than this loop, and one more dependency to keep.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

# Full jitter: a delay between half the backoff and all of it.
FULL_JITTER = (0.5, 1.0)
# Up to a quarter more than the backoff, never less.
ADDED_JITTER = (1.0, 1.25)


@dataclass(frozen=True)
class Attempt:
    """One attempt of a request: its number (1-based), its outcome and what the policy does next."""

    number: int
    outcome: httpx.Response | httpx.TransportError
    seconds: float
    retryable: bool
    """A network error, or a status the policy retries (even when no attempt is left)."""
    delay: float | None
    """Seconds to wait before the next attempt; None when this attempt is the final one."""

    @property
    def will_retry(self) -> bool:
        return self.delay is not None

    @property
    def response(self) -> httpx.Response:
        """The response; raises the network error when the attempt got none."""
        if isinstance(self.outcome, httpx.TransportError):
            raise self.outcome
        return self.outcome

    @property
    def reason(self) -> str:
        """`HTTP 503` or `network error ConnectError(...)`, for logs."""
        if isinstance(self.outcome, httpx.Response):
            return f"HTTP {self.outcome.status_code}"
        return f"network error {self.outcome!r}"


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts, backoff and `Retry-After` handling of one client; `send` runs a request under it."""

    retry_statuses: frozenset[int]
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = float("inf")
    jitter: tuple[float, float] = FULL_JITTER
    retry_after_max: float = 30.0
    # Injectable so a test can check the waits without spending them.
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), repr=False)

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` when the answer names none."""
        ceiling: float = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return ceiling * random.uniform(*self.jitter)

    def retry_after(self, response: httpx.Response) -> float | None:
        """`Retry-After` (seconds or an HTTP date) as seconds, clamped; None if absent or unreadable."""
        header = response.headers.get("Retry-After")
        if header is None:
            return None
        try:
            seconds = float(header)
        except ValueError:
            try:
                until = parsedate_to_datetime(header)
            except (TypeError, ValueError):
                return None
            if until.tzinfo is None:  # `-0000` in the date: RFC 5322 says UTC
                until = until.replace(tzinfo=UTC)
            seconds = (until - self.now()).total_seconds()
        return min(max(seconds, 0.0), self.retry_after_max)

    def delay(self, outcome: httpx.Response | httpx.TransportError, attempt: int) -> float:
        """Seconds to wait after `outcome` of attempt number `attempt`."""
        if isinstance(outcome, httpx.Response) and (seconds := self.retry_after(outcome)) is not None:
            return seconds
        return self.backoff(attempt)

    def send(
        self,
        request: Callable[[], httpx.Response],
        observe: Callable[[Attempt], None] | None = None,
    ) -> Attempt:
        """Call `request` until its answer is not retryable or the attempts run out.

        Returns the final attempt, whose outcome is then a response of any status; re-raises the
        network error of a final attempt. `observe` sees every attempt before the wait and may raise.
        """
        for number in range(1, self.max_attempts + 1):
            started = time.perf_counter()
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = request()
            except httpx.TransportError as exc:
                outcome = exc
            retryable = not isinstance(outcome, httpx.Response) or outcome.status_code in self.retry_statuses
            delay = self.delay(outcome, number) if retryable and number < self.max_attempts else None
            attempt = Attempt(number, outcome, time.perf_counter() - started, retryable, delay)
            if observe is not None:
                observe(attempt)
            if delay is None:
                if isinstance(outcome, httpx.TransportError):
                    raise outcome
                return attempt
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover - the last attempt returns or raises
