"""Result callbacks on SQLite and PostgreSQL, against a real local receiver: the allow-list at
create, the outbox written by record_callback in the caller's transaction, signed deliveries,
retries with the same delivery id, redirects not followed, the claim, the undelivered count.

Most tests record the delivery with record_callback in a transaction of their own, as the queue
does with a completion or dead letter; test_hot_path_wiring.py drives the same end to end over
HTTP (lock, complete / fail, delivered)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from backoffice.queue.callbacks import CallbackStore, record_callback
from backoffice.queue.models import CallbackDelivery
from backoffice.settings import Settings
from tests.callback_receiver import CallbackReceiver, json_of, valid_signature
from tests.helpers import ADMIN, app_client, assert_error
from tests.servers import serve

SECRET = "callback-test-secret"
TYPE = "EshopExport"


@pytest.fixture
def hook() -> Iterator[tuple[CallbackReceiver, str]]:
    """A receiver answering 200, served on loopback, and its base URL."""
    receiver = CallbackReceiver()
    with serve(receiver.app) as base:
        yield receiver, base


@pytest.fixture
def callback_settings(make_settings: Callable[..., Settings]) -> Settings:
    """Callbacks on for 127.0.0.1, polled and retried fast, three attempts."""
    return make_settings(
        callback_allowed_hosts="127.0.0.1",
        callback_secret=SECRET,
        callback_poll_seconds=0.05,
        callback_backoff_base_seconds=0.05,
        callback_timeout_seconds=5,
        callback_max_attempts=3,
    )


@pytest.fixture
def cb(callback_settings: Settings) -> Iterator[TestClient]:
    """The sidecar with callbacks on (its deliverer running)."""
    with app_client(callback_settings) as client:
        yield client


def create(client: TestClient, url: str) -> dict[str, Any]:
    response = client.post("/api/tasks", json={"task_type": TYPE, "callback_url": url}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


def record(engine: Engine, task_id: str, event: str = "task.completed") -> bool:
    """What the hot path does when a task completes: record the callback in its transaction."""
    with engine.begin() as conn:
        return record_callback(conn, uuid.UUID(task_id), event)


def wait_for_event(client: TestClient, task_id: str, name: str, count: int = 1) -> list[dict[str, Any]]:
    """The task's events named `name`, once there are `count` of them (gated, 60 s safety net)."""
    deadline = time.monotonic() + 60
    while True:
        events = client.get(f"/api/tasks/{task_id}/events", headers=ADMIN).json()["items"]
        found = [e for e in events if e["event"] == name]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"no {name} event; events: {events}"
        time.sleep(0.05)


def test_delivery_is_signed_and_carries_the_task(
    cb: TestClient, engine: Engine, hook: tuple[CallbackReceiver, str]
) -> None:
    receiver, base = hook
    task = create(cb, f"{base}/hook")
    assert task["callback_url"] == f"{base}/hook"
    assert record(engine, task["id"]) is True
    (got,) = receiver.wait_for(1)
    assert valid_signature(SECRET, got)
    assert not valid_signature("another-secret", got)
    assert got.headers["x-backoffice-event"] == "task.completed"
    uuid.UUID(got.headers["x-backoffice-delivery"])
    body = json_of(got)
    assert body["event"] == "task.completed"
    assert body["task"] == cb.get(f"/api/tasks/{task['id']}", headers=ADMIN).json()
    (delivered,) = wait_for_event(cb, task["id"], "callback_delivered")
    assert delivered["details"]["status"] == 200 and delivered["details"]["attempt"] == 1


def test_a_500_then_a_200_is_delivered_once_after_a_retry(
    cb: TestClient, engine: Engine, hook: tuple[CallbackReceiver, str]
) -> None:
    receiver, base = hook
    receiver.answers = [500]
    task = create(cb, f"{base}/hook")
    record(engine, task["id"], "task.failed")
    first, second = receiver.wait_for(2)
    assert (first.answered, second.answered) == (500, 200)
    # One delivery: the same id and the same signed bytes on the retry.
    assert first.headers["x-backoffice-delivery"] == second.headers["x-backoffice-delivery"]
    assert first.body == second.body and valid_signature(SECRET, second)
    (failed,) = wait_for_event(cb, task["id"], "callback_failed")
    assert failed["details"]["status"] == 500 and "retry_at" in failed["details"]
    (delivered,) = wait_for_event(cb, task["id"], "callback_delivered")
    assert delivered["details"]["attempt"] == 2
    with engine.connect() as conn:
        rows = conn.execute(select(CallbackDelivery.status, CallbackDelivery.attempts)).all()
    assert [tuple(r) for r in rows] == [("delivered", 2)]
    assert len(receiver.received) == 2


def test_redirects_are_not_followed(
    cb: TestClient, engine: Engine, hook: tuple[CallbackReceiver, str]
) -> None:
    receiver, base = hook
    task = create(cb, f"{base}/redirect")
    record(engine, task["id"])
    # Three attempts (callback_max_attempts), each answered 302, then the delivery gives up.
    failures = wait_for_event(cb, task["id"], "callback_failed", count=3)
    assert [f["details"]["status"] for f in failures] == [302, 302, 302]
    assert failures[-1]["details"]["gave_up"] is True
    assert [r.path for r in receiver.received] == ["/redirect"] * 3
    text = cb.get("/metrics").text
    assert 'backoffice_callbacks_undelivered{state="failed"} 1.0' in text


def test_refused_connection_is_retried_with_backoff(
    cb: TestClient, engine: Engine, callback_settings: Settings
) -> None:
    # Nothing listens on port 9 of loopback: every attempt is refused.
    task = create(cb, "http://127.0.0.1:9/hook")
    record(engine, task["id"])
    failures = wait_for_event(cb, task["id"], "callback_failed", count=3)
    assert all(f["details"]["status"] is None and f["details"]["error"] for f in failures)
    assert "retry_at" in failures[0]["details"] and failures[-1]["details"]["gave_up"] is True


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://evil.example/hook", "callback_not_allowed"),
        ("https://127.0.0.1.evil.example/hook", "callback_not_allowed"),
        ("http://user@evil.example/hook", "callback_not_allowed"),
        ("http://127.0.0.1:notaport/hook", "callback_not_allowed"),
        ("ftp://127.0.0.1/hook", "validation_error"),
        ("127.0.0.1/hook", "validation_error"),
    ],
)
def test_disallowed_callback_url_is_422(cb: TestClient, url: str, code: str) -> None:
    response = cb.post("/api/tasks", json={"task_type": TYPE, "callback_url": url}, headers=ADMIN)
    assert_error(response, 422, code)
    assert cb.get("/api/tasks", headers=ADMIN).json()["items"] == []


def test_callbacks_off_refuse_any_callback_url(client: TestClient) -> None:
    response = client.post(
        "/api/tasks", json={"task_type": TYPE, "callback_url": "http://127.0.0.1/hook"}, headers=ADMIN
    )
    assert_error(response, 422, "callback_not_allowed")


def test_record_callback_needs_a_callback_url(cb: TestClient, engine: Engine) -> None:
    plain = cb.post("/api/tasks", json={"task_type": TYPE}, headers=ADMIN).json()
    assert record(engine, plain["id"]) is False
    assert record(engine, str(uuid.uuid4())) is False
    with pytest.raises(ValueError, match="unknown callback event"):
        record(engine, plain["id"], "task.exploded")
    with engine.connect() as conn:
        assert conn.execute(select(CallbackDelivery.id)).all() == []


def test_record_callback_rolls_back_with_its_transaction(
    cb: TestClient, engine: Engine, hook: tuple[CallbackReceiver, str]
) -> None:
    _, base = hook
    task = create(cb, f"{base}/hook")

    class Abort(Exception):
        pass

    with pytest.raises(Abort), engine.begin() as conn:
        assert record_callback(conn, uuid.UUID(task["id"]), "task.completed")
        raise Abort
    with engine.connect() as conn:
        assert conn.execute(select(CallbackDelivery.id)).all() == []


def test_a_claimed_delivery_is_not_claimed_again_until_its_lease_runs_out(
    engine: Engine, make_settings: Callable[..., Settings], client: TestClient
) -> None:
    # The API with callbacks on, but no deliverer: this test claims by hand.
    settings = make_settings(
        callback_allowed_hosts="127.0.0.1", callback_secret=SECRET, callback_timeout_seconds=1
    )
    from backoffice.queue.store import TaskStore

    tasks = TaskStore(engine, settings)
    try:
        task, _ = tasks.create("ops", TYPE, {}, callback_url="http://127.0.0.1/hook")
    finally:
        tasks.close()
    record(engine, str(task.id))
    store = CallbackStore(engine, settings)
    now = datetime.now(UTC)
    first = store.claim(now)
    assert first is not None and first["task_id"] == task.id
    assert store.claim(now) is None  # held by the first claim
    later = store.claim(now + store.lease)  # the first deliverer died: its lease ran out
    assert later is not None and later["delivery_id"] == first["delivery_id"]
    assert later["claim_token"] != first["claim_token"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_record_callback_sql_serves_a_single_statement(
    cb: TestClient, engine: Engine, hook: tuple[CallbackReceiver, str]
) -> None:
    """The PostgreSQL form (SQLite records with record_callback), appended as a CTE to a statement
    that RETURNs id and callback_url."""
    from sqlalchemy import bindparam, text

    from backoffice.queue.callbacks import record_callback_sql
    from backoffice.schema import UTCDateTime

    _, base = hook
    with_url, without = (
        create(cb, f"{base}/hook"),
        cb.post("/api/tasks", json={"task_type": TYPE}, headers=ADMIN).json(),
    )
    statement = text(
        "WITH done AS (SELECT id, callback_url FROM tasks WHERE id = ANY(CAST(:ids AS uuid[]))), "
        f"callbacks AS ({record_callback_sql('done', 'task.completed')}) SELECT count(*) FROM done"
    ).bindparams(bindparam("now", type_=UTCDateTime()))
    with engine.begin() as conn:
        conn.execute(statement, {"ids": [with_url["id"], without["id"]], "now": datetime.now(UTC)})
    with engine.connect() as conn:
        rows = conn.execute(select(CallbackDelivery.task_id, CallbackDelivery.event)).all()
    assert [tuple(r) for r in rows] == [(uuid.UUID(with_url["id"]), "task.completed")]
    with pytest.raises(ValueError):
        record_callback_sql("done; DROP TABLE tasks", "task.completed")


def test_two_deliverers_send_each_delivery_once(
    engine: Engine, callback_settings: Settings, hook: tuple[CallbackReceiver, str]
) -> None:
    """Two deliverers (as two sidecars) on one outbox: every delivery arrives exactly once."""
    from backoffice.queue.callbacks import CallbackDeliverer
    from backoffice.queue.store import TaskStore

    receiver, base = hook
    tasks = TaskStore(engine, callback_settings)
    deliverers: list[CallbackDeliverer] = []
    try:
        ids = [tasks.create("ops", TYPE, {"n": n}, callback_url=f"{base}/hook")[0].id for n in range(20)]
        with engine.begin() as conn:
            for task_id in ids:
                record_callback(conn, task_id, "task.completed")
        deliverers = [
            CallbackDeliverer(
                CallbackStore(engine, callback_settings), tasks.find, lambda t: {"id": str(t.id)}
            )
            for _ in range(2)
        ]
        for d in deliverers:
            d.start()
        received = receiver.wait_for(20)
        for d in deliverers:
            d.stop()
    finally:
        for d in deliverers:
            d.stop()
        tasks.close()
    # Counted after both stopped: a second send of any delivery would show here.
    assert len(receiver.received) == 20
    assert len({r.headers["x-backoffice-delivery"] for r in received}) == 20
    assert sorted(json_of(r)["task"]["id"] for r in received) == sorted(str(i) for i in ids)
    with engine.connect() as conn:
        assert set(conn.execute(select(CallbackDelivery.status)).scalars()) == {"delivered"}
