"""Shoptet's leaky bucket, paced on our side so Shoptet rarely has to answer 429.

Every Shoptet response carries `X-RateLimit-Bucket-Filling: <drops>/<capacity>` (e.g. `200/200`);
each request adds a drop and the bucket drains at a steady rate (10 drops a second). When it is
full Shoptet answers 429 with `Retry-After`. A client that reads the header can slow down on its
own: `BucketPacer.pace()` waits before a request while the last reading, drained since then,
leaves fewer than `headroom` drops free.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

BUCKET_HEADER = "X-RateLimit-Bucket-Filling"
DRAIN_PER_SECOND = 10.0
# Room kept free: the 3 connections a token may have in flight, and a few more as margin.
HEADROOM_DROPS = 5

_FILLING = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*")


def parse_filling(header: str | None) -> tuple[float, float] | None:
    """`"150/200"` → `(150.0, 200.0)`; None when absent or not in that form."""
    match = _FILLING.fullmatch(header or "")
    if match is None or float(match[2]) <= 0:
        return None
    return float(match[1]), float(match[2])


class BucketPacer:
    """The bucket as this client last saw it, shared by its threads."""

    def __init__(
        self,
        *,
        drain_per_second: float = DRAIN_PER_SECOND,
        headroom: float = HEADROOM_DROPS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.drain_per_second = drain_per_second
        self.headroom = headroom
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._level = 0.0
        self._capacity: float | None = None  # unknown until a response says it
        self._seen_at = 0.0
        self.waited = 0.0
        """Seconds spent waiting for the bucket, summed over threads."""

    def observe(self, header: str | None) -> None:
        """Take the bucket's filling from a response's header (ignored when absent)."""
        filling = parse_filling(header)
        if filling is None:
            return
        with self._lock:
            self._level, self._capacity = filling
            self._seen_at = self._clock()

    def _level_now(self) -> float:
        return max(0.0, self._level - (self._clock() - self._seen_at) * self.drain_per_second)

    def pace(self) -> None:
        """Wait until the bucket has room for one more request, then count that request in."""
        with self._lock:
            if self._capacity is None:
                return
            level = self._level_now()
            room = self._capacity - self.headroom
            delay = max(0.0, (level + 1 - room) / self.drain_per_second)
            # Counted now, as the bucket will be when this request goes out: the client's other
            # threads then queue behind it instead of beside it.
            self._level = level - delay * self.drain_per_second + 1
            self._seen_at = self._clock() + delay
            self.waited += delay
        if delay > 0:
            self._sleep(delay)
