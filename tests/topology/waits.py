"""Waiting on an event with a generous deadline (never a bare sleep standing in for the event)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(what: str, check: Callable[[], T | None], timeout: float = 120.0, every: float = 0.2) -> T:
    """Poll `check` until it returns something truthy and return that; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting until {what}"
        time.sleep(every)
