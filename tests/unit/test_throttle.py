"""The key-guessing throttle's window and the reserved key names, without I/O (a hand-moved clock)."""

from __future__ import annotations

import pytest

from backoffice.errors import TooManyAttempts
from backoffice.queue.keys import reads_like_bootstrap_admin
from task_queue_api.throttle import FailureThrottle

FULL_WIDTH = "".join(chr(ord(c) + 0xFEE0) for c in "bootstrap") + "-admin"  # full-width letters


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limit_holds_until_the_oldest_failure_leaves_the_window() -> None:
    clock = Clock()
    throttle = FailureThrottle(limit=3, window_seconds=60, clock=clock)
    for at in (1000.0, 1010.0, 1020.0):
        clock.now = at
        throttle.check("a")
        throttle.failed("a")
    with pytest.raises(TooManyAttempts) as refused:
        throttle.check("a")
    assert refused.value.retry_after == 40  # the first failure leaves the window at 1060
    throttle.check("b")  # other addresses are not affected
    clock.now = 1060.0
    throttle.check("a")  # one more guess is allowed, then the next oldest holds the line
    throttle.failed("a")
    assert throttle.retry_after("a") == 10


def test_the_number_of_remembered_addresses_is_bounded() -> None:
    throttle = FailureThrottle(limit=1, window_seconds=60, clock=Clock(), max_addresses=2)
    for address in ("a", "b", "c"):
        throttle.failed(address)
    assert throttle.retry_after("a") is None  # the stalest was forgotten
    assert throttle.retry_after("b") == 60 and throttle.retry_after("c") == 60


@pytest.mark.parametrize(
    ("name", "reserved"),
    [
        ("bootstrap-admin", True),
        ("Bootstrap-Admin", True),
        ("bootstrap admin", True),
        ("BOOTSTRAP_ADMIN", True),
        ("b00tstrap-adm1n", True),
        (FULL_WIDTH, True),
        ("old-bootstrap.admin", True),
        ("bootstrap", False),
        ("admin", False),
        ("ops-admin", False),
    ],
)
def test_names_that_read_like_the_bootstrap_admin(name: str, reserved: bool) -> None:
    assert reads_like_bootstrap_admin(name) is reserved
