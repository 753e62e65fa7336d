"""The slow-down of key guessing: failed key checks (API and sign-in form) counted per client address.

After `BACKOFFICE_AUTH_FAILURE_LIMIT` failures within `BACKOFFICE_AUTH_FAILURE_WINDOW_SECONDS`,
the address gets 429 `too_many_attempts` (with Retry-After) until its oldest failure leaves the
window. While refused, a key is not checked at all: otherwise a right guess would still show.
Successes neither count nor wipe the failures (a valid low-rank key must not reset the count).

The counts live in the process: each sidecar process counts on its own, and a restart forgets
them. An attacker spread over N processes gets N times the limit, still a fixed small rate.
The client address is the TCP peer, or X-Forwarded-For when the peer is a trusted proxy.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from fastapi import Request

from backoffice.errors import TooManyAttempts
from backoffice.settings import Settings

# Addresses remembered at most; beyond it the stalest are forgotten (bounded memory under a flood).
MAX_ADDRESSES = 10_000


class FailureThrottle:
    """Sliding-window count of failed key checks per client address (thread-safe)."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self.max_addresses = max_addresses
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> FailureThrottle:
        """A throttle with the configured limit and window."""
        return cls(settings.auth_failure_limit, settings.auth_failure_window_seconds)

    def retry_after(self, address: str) -> int | None:
        """Seconds until `address` may try a key again, or None when it may now."""
        with self._lock:
            failures = self._failures.get(address)
            if failures is None or len(failures) < self.limit:
                return None
            wait = failures[0] + self.window - self._clock()
        return math.ceil(wait) if wait > 0 else None

    def check(self, address: str) -> None:
        """Raise TooManyAttempts while `address` has used up its failures."""
        wait = self.retry_after(address)
        if wait is not None:
            raise TooManyAttempts(
                f"Too many wrong keys from your address; wait {wait} seconds, then try a correct key.",
                retry_after=wait,
            )

    def failed(self, address: str) -> None:
        """Count one failed key check from `address`."""
        now = self._clock()
        with self._lock:
            failures = self._failures.pop(address, None) or deque(maxlen=self.limit)
            failures.append(now)
            self._failures[address] = failures  # re-inserted last: dict order is staleness order
            if len(self._failures) > self.max_addresses:
                stalest = next(iter(self._failures))
                del self._failures[stalest]


def client_address(request: Request) -> str:
    """The caller's address (a trusted proxy's X-Forwarded-For already applied)."""
    return request.client.host if request.client else "unknown"
