"""A sidecar (`backoffice api`, a real process) SIGKILLed with a pending delivery: the delivery is in
the database, not in the process, so the restarted sidecar delivers it, with the same delivery id."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

from backoffice.queue.callbacks import record_callback
from backoffice.queue.models import CallbackDelivery, TaskEvent
from backoffice.settings import Settings
from tests.callback_receiver import CallbackReceiver, valid_signature
from tests.helpers import ADMIN
from tests.servers import ThreadedServer, free_port
from tests.sidecar import Sidecar

pytestmark = pytest.mark.slow

SECRET = "callback-test-secret"


def events_of(engine: Engine, task_id: uuid.UUID, name: str) -> list[TaskEvent]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(TaskEvent).where(TaskEvent.task_id == task_id, TaskEvent.event == name)
            ).scalars()
        )


def wait_until(check: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Gate on `check` (polled); AssertionError naming `what` after the safety net."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_sigkilled_sidecar_delivers_after_restart(
    make_settings: Callable[..., Settings], engine: Engine, tmp_path: Path
) -> None:
    port = free_port()  # the receiver's, not listening yet: every attempt is refused
    url = f"http://127.0.0.1:{port}/hook"
    settings = make_settings(
        callback_allowed_hosts="127.0.0.1",
        callback_secret=SECRET,
        callback_poll_seconds=0.1,
        callback_backoff_base_seconds=0.2,
        callback_backoff_max_seconds=0.5,
        callback_timeout_seconds=1,
        callback_max_attempts=1000,
    )
    first = Sidecar(settings, log_path=tmp_path / "first.log")
    first.start()
    try:
        created = httpx.post(
            f"{first.url}/api/tasks", json={"task_type": "EshopExport", "callback_url": url}, headers=ADMIN
        )
        assert created.status_code == 201, created.text
        task_id = uuid.UUID(created.json()["id"])
        with engine.begin() as conn:
            assert record_callback(conn, task_id, "task.completed")
        # The first sidecar has tried (and been refused): the delivery is pending, in its hands.
        wait_until(lambda: bool(events_of(engine, task_id, "callback_failed")), "a refused attempt")
        assert first.process is not None
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=15)
    finally:
        first.stop()
    with engine.connect() as conn:
        (status, delivery_id) = conn.execute(
            select(CallbackDelivery.status, CallbackDelivery.delivery_id)
        ).one()
    assert status == "pending"

    receiver = CallbackReceiver()
    server = ThreadedServer(receiver.app, port=port)
    server.start()
    try:
        with Sidecar(settings, log_path=tmp_path / "second.log"):
            (got,) = receiver.wait_for(1, timeout=120)
            wait_until(lambda: bool(events_of(engine, task_id, "callback_delivered")), "the delivery")
    finally:
        server.stop()
    assert got.headers["x-backoffice-delivery"] == str(delivery_id)
    assert valid_signature(SECRET, got)
    with engine.connect() as conn:
        assert conn.execute(select(CallbackDelivery.status)).scalar_one() == "delivered"
    assert len(receiver.received) == 1
