"""The task queue over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import ADMIN, assert_error

TYPE = "EshopExport"


def create(client: TestClient, headers: dict[str, str] = ADMIN, **body: Any) -> dict[str, Any]:
    body.setdefault("task_type", TYPE)
    response = client.post("/api/tasks", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def lock(client: TestClient, headers: dict[str, str] = ADMIN, **body: Any) -> list[dict[str, Any]]:
    body.setdefault("task_type", TYPE)
    response = client.post("/api/tasks/lock", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


# --- create, idempotency, validation ---------------------------------------------------------


def test_create_returns_201_with_location_and_audit_fields(
    client: TestClient, operator: dict[str, str]
) -> None:
    response = client.post("/api/tasks", json={"task_type": TYPE, "data": {"sku": "A1"}}, headers=operator)
    assert response.status_code == 201
    task = response.json()
    assert response.headers["location"] == f"/api/tasks/{task['id']}"
    assert task["status"] == "pending"
    assert task["data"] == {"sku": "A1"}
    assert task["created_by"] == "ops" and task["updated_by"] == "ops"
    assert task["attempts"] == 0 and task["max_attempts"] == 5 and task["version"] == 1
    assert "lock_token" not in task


def test_repeated_idempotency_key_returns_existing_task(client: TestClient) -> None:
    first = create(client, data={"n": 1}, idempotency_key="order-42")
    again = client.post(
        "/api/tasks", json={"task_type": TYPE, "data": {"n": 1}, "idempotency_key": "order-42"}, headers=ADMIN
    )
    assert again.status_code == 200
    assert again.json()["id"] == first["id"] and again.json()["data"] == {"n": 1}
    other_type = create(client, task_type="Other", idempotency_key="order-42")
    assert other_type["id"] != first["id"]
    listed = client.get("/api/tasks", params={"task_type": TYPE}, headers=ADMIN).json()["items"]
    assert len(listed) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"task_type": "", "data": {}},
        {"task_type": "9starts-with-digit"},
        {"task_type": "has space"},
        {"task_type": "x" * 129},
        {"task_type": TYPE, "data": [1, 2]},
        {"task_type": TYPE, "data": "text"},
        {"task_type": TYPE, "priority": "high"},
        {"task_type": TYPE, "max_attempts": 0},
        {"task_type": TYPE, "not_before": "2026-01-01T00:00:00"},
        {"task_type": TYPE, "unknown_field": 1},
    ],
)
def test_invalid_create_is_422(client: TestClient, body: dict[str, Any]) -> None:
    assert_error(client.post("/api/tasks", json=body, headers=ADMIN), 422, "validation_error")
    assert client.get("/api/tasks", headers=ADMIN).json()["items"] == []


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/api/tasks", content=b'{"task_type": ', headers={**ADMIN, "content-type": "application/json"}
    )
    assert_error(response, 422, "validation_error")


def test_data_over_limit_is_413_and_nothing_is_stored(client: TestClient) -> None:
    big = {"blob": "x" * (256 * 1024)}
    assert_error(
        client.post("/api/tasks", json={"task_type": TYPE, "data": big}, headers=ADMIN),
        413,
        "payload_too_large",
    )
    assert client.get("/api/tasks", headers=ADMIN).json()["items"] == []


# --- auth ----------------------------------------------------------------------------------


def test_missing_unknown_and_revoked_keys_are_401(client: TestClient, make_key: Any) -> None:
    assert_error(client.get("/api/tasks"), 401, "unauthorized")
    assert_error(client.get("/api/tasks", headers={"x-functions-key": "nope"}), 401, "unauthorized")
    key = make_key("temp", "operator")
    assert client.get("/api/tasks", headers=key).status_code == 200
    assert client.delete("/api/keys/temp", headers=ADMIN).status_code == 204
    assert_error(client.get("/api/tasks", headers=key), 401, "unauthorized")


def test_code_query_parameter_works_and_header_wins(client: TestClient, make_key: Any) -> None:
    consumer = make_key("c1", "consumer", [TYPE])["x-functions-key"]
    operator = make_key("o1", "operator")["x-functions-key"]
    assert client.get("/api/tasks", params={"code": operator}).status_code == 200
    # header (consumer) wins over code (operator): creating is refused
    response = client.post(
        "/api/tasks",
        params={"code": operator},
        json={"task_type": TYPE},
        headers={"x-functions-key": consumer},
    )
    assert_error(response, 403, "forbidden")


def test_consumer_is_limited_to_its_role_and_types(client: TestClient, worker: dict[str, str]) -> None:
    other = create(client, task_type="Payroll")
    assert_error(client.post("/api/tasks", json={"task_type": TYPE}, headers=worker), 403, "forbidden")
    assert_error(
        client.post("/api/tasks/lock", json={"task_type": "Payroll"}, headers=worker), 403, "forbidden"
    )
    assert_error(client.get(f"/api/tasks/{other['id']}", headers=worker), 403, "forbidden")
    assert_error(client.get("/api/keys", headers=worker), 403, "forbidden")
    mine = create(client)
    listed = client.get("/api/tasks", headers=worker).json()["items"]
    assert [t["id"] for t in listed] == [mine["id"]]
    types = client.get("/api/task-types", headers=worker).json()["items"]
    assert [t["task_type"] for t in types] == [TYPE]


# --- lock ----------------------------------------------------------------------------------


def test_lock_order_is_priority_then_not_before_or_creation_then_id(client: TestClient) -> None:
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    low = create(client, priority=5)
    first = create(client, priority=0)
    second = create(client, priority=0)
    older = create(client, priority=0, not_before=past)
    create(client, priority=0, not_before=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    items = lock(client, limit=10)
    assert [t["id"] for t in items] == [older["id"], first["id"], second["id"], low["id"]]
    assert all(t["status"] == "locked" and t["attempts"] == 1 and t["lock_token"] for t in items)
    assert len({t["lock_token"] for t in items}) == 4
    assert lock(client) == []


def test_lock_respects_limit_and_default_lease(client: TestClient, settings: Any) -> None:
    for _ in range(3):
        create(client)
    items = lock(client, limit=2)
    assert len(items) == 2
    until = datetime.fromisoformat(items[0]["locked_until"])
    assert timedelta(seconds=590) < until - datetime.now(UTC) <= timedelta(seconds=600)
    assert items[0]["locked_by"] == "bootstrap-admin"
    assert len(lock(client, limit=5)) == 1


@pytest.mark.parametrize(
    "body",
    [{"limit": 0}, {"limit": 101}, {"lease_seconds": 0}, {"lease_seconds": 3601}, {"wait_seconds": 31}],
)
def test_invalid_lock_requests_are_422(client: TestClient, body: dict[str, Any]) -> None:
    create(client)
    response = client.post("/api/tasks/lock", json={"task_type": TYPE, **body}, headers=ADMIN)
    assert_error(response, 422, "validation_error")
    assert client.get("/api/task-types", headers=ADMIN).json()["items"][0]["pending"] == 1


def test_long_poll_returns_when_a_task_arrives(client: TestClient) -> None:
    def produce() -> None:
        time.sleep(0.5)
        create(client, data={"late": True})

    producer = threading.Thread(target=produce)
    producer.start()
    started = time.monotonic()
    items = lock(client, wait_seconds=10)
    producer.join()
    assert [t["data"] for t in items] == [{"late": True}]
    assert time.monotonic() - started < 9  # woken by the task, not by the timeout


def test_long_poll_returns_empty_after_wait(client: TestClient) -> None:
    assert lock(client, wait_seconds=0.3) == []


# --- complete ------------------------------------------------------------------------------


def test_complete_then_second_completion_is_409_naming_who_and_when(
    client: TestClient, worker: dict[str, str]
) -> None:
    create(client)
    [task] = lock(client, worker)
    done = client.post(
        f"/api/tasks/{task['id']}/complete",
        json={"lock_token": task["lock_token"], "result": {"rows": 3}},
        headers=worker,
    )
    assert done.status_code == 200
    body = done.json()
    assert body["status"] == "completed" and body["result"] == {"rows": 3}
    assert body["completed_by"] == "worker-1" and body["completed_date"]
    again = client.post(
        f"/api/tasks/{task['id']}/complete",
        json={"lock_token": task["lock_token"], "result": 1},
        headers=worker,
    )
    error = assert_error(again, 409, "already_completed")
    assert error["completed_by"] == "worker-1"
    assert error["completed_date"] == body["completed_date"].replace("Z", "+00:00")


def test_complete_with_wrong_token_is_lock_lost(client: TestClient) -> None:
    create(client)
    [task] = lock(client)
    response = client.post(
        f"/api/tasks/{task['id']}/complete",
        json={"lock_token": "00000000-0000-0000-0000-000000000000", "result": None},
        headers=ADMIN,
    )
    assert_error(response, 409, "lock_lost")
    assert client.get(f"/api/tasks/{task['id']}", headers=ADMIN).json()["status"] == "locked"


def test_complete_unknown_task_is_404(client: TestClient) -> None:
    response = client.post(
        "/api/tasks/00000000-0000-0000-0000-000000000001/complete",
        json={"lock_token": "00000000-0000-0000-0000-000000000000"},
        headers=ADMIN,
    )
    assert_error(response, 404, "not_found")
    assert_error(client.get("/api/tasks/not-a-uuid", headers=ADMIN), 422, "validation_error")


def test_result_over_limit_is_413_and_task_stays_locked(client: TestClient) -> None:
    create(client)
    [task] = lock(client)
    response = client.post(
        f"/api/tasks/{task['id']}/complete",
        json={"lock_token": task["lock_token"], "result": "x" * (1024 * 1024 + 1)},
        headers=ADMIN,
    )
    assert_error(response, 413, "payload_too_large")
    assert client.get(f"/api/tasks/{task['id']}", headers=ADMIN).json()["status"] == "locked"


def test_expired_holder_may_complete_until_someone_relocks(client: TestClient) -> None:
    create(client)
    [task] = lock(client, lease_seconds=1)
    time.sleep(1.1)
    assert client.get(f"/api/tasks/{task['id']}", headers=ADMIN).json()["status"] == "expired"
    done = client.post(
        f"/api/tasks/{task['id']}/complete",
        json={"lock_token": task["lock_token"], "result": "late"},
        headers=ADMIN,
    )
    assert done.status_code == 200 and done.json()["status"] == "completed"


def test_batch_completion_judges_each_item(client: TestClient) -> None:
    for _ in range(3):
        create(client)
    a, b, c = lock(client, limit=3)
    create(client, task_type="Other")
    response = client.post(
        "/api/tasks/complete",
        json={
            "items": [
                {"id": a["id"], "lock_token": a["lock_token"], "result": 1},
                {"id": b["id"], "lock_token": c["lock_token"], "result": 2},
                {"id": "00000000-0000-0000-0000-000000000009", "lock_token": a["lock_token"]},
                {"id": a["id"], "lock_token": a["lock_token"], "result": 3},
            ]
        },
        headers=ADMIN,
    )
    assert response.status_code == 200
    assert response.json()["results"] == [
        {"id": a["id"], "ok": True, "error": None},
        {"id": b["id"], "ok": False, "error": "lock_lost"},
        {"id": "00000000-0000-0000-0000-000000000009", "ok": False, "error": "not_found"},
        {"id": a["id"], "ok": False, "error": "duplicate_item"},
    ]
    assert client.get(f"/api/tasks/{a['id']}", headers=ADMIN).json()["result"] == 1
    assert client.get(f"/api/tasks/{b['id']}", headers=ADMIN).json()["status"] == "locked"


def test_batch_completion_refuses_other_types_for_a_consumer(client: TestClient, make_key: Any) -> None:
    consumer = make_key("c", "consumer", ["Other"])
    create(client)
    [task] = lock(client)
    response = client.post(
        "/api/tasks/complete",
        json={"items": [{"id": task["id"], "lock_token": task["lock_token"]}]},
        headers=consumer,
    )
    assert response.json()["results"] == [{"id": task["id"], "ok": False, "error": "forbidden"}]


# --- fail, extend, retry -------------------------------------------------------------------


def test_fail_with_retry_backs_off_then_dead_letters_at_max_attempts(client: TestClient) -> None:
    task = create(client, max_attempts=2)
    [held] = lock(client)
    failed = client.post(
        f"/api/tasks/{task['id']}/fail",
        json={"lock_token": held["lock_token"], "error": "boom"},
        headers=ADMIN,
    ).json()
    assert failed["status"] == "pending" and failed["last_error"] == "boom"
    assert lock(client) == []  # backing off
    # an operator can pull the backoff forward
    client.patch(
        f"/api/tasks/{task['id']}", json={"not_before": datetime.now(UTC).isoformat()}, headers=ADMIN
    )
    [held] = lock(client)
    assert held["attempts"] == 2
    dead = client.post(
        f"/api/tasks/{task['id']}/fail",
        json={"lock_token": held["lock_token"], "error": "again"},
        headers=ADMIN,
    ).json()
    assert dead["status"] == "failed" and dead["last_error"] == "again"


def test_fail_without_retry_is_dead_letter_at_once(client: TestClient) -> None:
    create(client)
    [held] = lock(client)
    response = client.post(
        f"/api/tasks/{held['id']}/fail",
        json={"lock_token": held["lock_token"], "error": "bad data", "retry": False},
        headers=ADMIN,
    )
    assert response.json()["status"] == "failed"
    stale = client.post(
        f"/api/tasks/{held['id']}/fail", json={"lock_token": held["lock_token"], "error": "x"}, headers=ADMIN
    )
    assert_error(stale, 409, "lock_lost")


def test_extend_pushes_locked_until_and_wrong_token_is_lock_lost(client: TestClient) -> None:
    create(client)
    [held] = lock(client, lease_seconds=30)
    response = client.post(
        f"/api/tasks/{held['id']}/extend",
        json={"lock_token": held["lock_token"], "lease_seconds": 3000},
        headers=ADMIN,
    )
    assert response.status_code == 200
    until = datetime.fromisoformat(response.json()["locked_until"])
    assert until - datetime.now(UTC) > timedelta(seconds=2900)
    wrong = client.post(
        f"/api/tasks/{held['id']}/extend",
        json={"lock_token": "00000000-0000-0000-0000-000000000000"},
        headers=ADMIN,
    )
    assert_error(wrong, 409, "lock_lost")
    too_long = client.post(
        f"/api/tasks/{held['id']}/extend",
        json={"lock_token": held["lock_token"], "lease_seconds": 99999},
        headers=ADMIN,
    )
    assert_error(too_long, 422, "validation_error")


def test_retry_resets_a_failed_task_and_refuses_others(client: TestClient, worker: dict[str, str]) -> None:
    create(client)
    [held] = lock(client)
    client.post(
        f"/api/tasks/{held['id']}/fail",
        json={"lock_token": held["lock_token"], "error": "x", "retry": False},
        headers=ADMIN,
    )
    assert_error(client.post(f"/api/tasks/{held['id']}/retry", headers=worker), 403, "forbidden")
    retried = client.post(f"/api/tasks/{held['id']}/retry", headers=ADMIN).json()
    assert retried["status"] == "pending" and retried["attempts"] == 0
    assert_error(client.post(f"/api/tasks/{held['id']}/retry", headers=ADMIN), 409, "not_retryable")


# --- update and delete ---------------------------------------------------------------------


def test_patch_with_if_match(client: TestClient) -> None:
    task = create(client, data={"a": 1})
    updated = client.patch(
        f"/api/tasks/{task['id']}", json={"data": {"a": 2}, "priority": 3}, headers={**ADMIN, "If-Match": "1"}
    )
    assert updated.status_code == 200
    assert updated.json()["data"] == {"a": 2} and updated.json()["version"] == 2
    stale = client.patch(f"/api/tasks/{task['id']}", json={"priority": 9}, headers={**ADMIN, "If-Match": "1"})
    assert_error(stale, 412, "precondition_failed")
    assert client.get(f"/api/tasks/{task['id']}", headers=ADMIN).json()["priority"] == 3
    bad = client.patch(f"/api/tasks/{task['id']}", json={"priority": 1}, headers={**ADMIN, "If-Match": "abc"})
    assert_error(bad, 422, "validation_error")


def test_patch_and_delete_refused_while_locked_or_completed(client: TestClient) -> None:
    create(client)
    [held] = lock(client)
    assert_error(
        client.patch(f"/api/tasks/{held['id']}", json={"priority": 1}, headers=ADMIN), 409, "task_locked"
    )
    assert_error(client.delete(f"/api/tasks/{held['id']}", headers=ADMIN), 409, "task_locked")
    client.post(f"/api/tasks/{held['id']}/complete", json={"lock_token": held["lock_token"]}, headers=ADMIN)
    assert_error(
        client.patch(f"/api/tasks/{held['id']}", json={"priority": 1}, headers=ADMIN), 409, "task_completed"
    )


def test_delete_keeps_the_audit_trail(client: TestClient, operator: dict[str, str]) -> None:
    task = create(client)
    assert client.delete(f"/api/tasks/{task['id']}", headers=operator).status_code == 204
    assert_error(client.get(f"/api/tasks/{task['id']}", headers=ADMIN), 404, "not_found")
    assert_error(client.delete(f"/api/tasks/{task['id']}", headers=ADMIN), 404, "not_found")
    events = client.get(f"/api/tasks/{task['id']}/events", headers=ADMIN).json()["items"]
    assert [(e["event"], e["actor"]) for e in events] == [("created", "bootstrap-admin"), ("deleted", "ops")]


def test_events_follow_the_lifecycle(client: TestClient, worker: dict[str, str]) -> None:
    task = create(client)
    client.patch(f"/api/tasks/{task['id']}", json={"priority": 2}, headers=ADMIN)
    [held] = lock(client, worker)
    client.post(f"/api/tasks/{held['id']}/extend", json={"lock_token": held["lock_token"]}, headers=worker)
    client.post(f"/api/tasks/{held['id']}/complete", json={"lock_token": held["lock_token"]}, headers=worker)
    events = client.get(f"/api/tasks/{task['id']}/events", headers=worker).json()["items"]
    assert [e["event"] for e in events] == ["created", "updated", "locked", "lock_extended", "completed"]
    assert [e["actor"] for e in events][2:] == ["worker-1"] * 3
    assert_error(
        client.get("/api/tasks/00000000-0000-0000-0000-000000000001/events", headers=ADMIN), 404, "not_found"
    )


# --- listing and stats ---------------------------------------------------------------------


def test_list_pages_newest_first_with_filters(client: TestClient, operator: dict[str, str]) -> None:
    ids = [create(client, headers=operator if n % 2 else ADMIN)["id"] for n in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/tasks", params=params, headers=ADMIN).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    by_ops = client.get("/api/tasks", params={"created_by": "ops"}, headers=ADMIN).json()["items"]
    assert {t["id"] for t in by_ops} == set(ids[1::2])
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert client.get("/api/tasks", params={"created_from": future}, headers=ADMIN).json()["items"] == []
    assert_error(
        client.get("/api/tasks", params={"cursor": "garbage!"}, headers=ADMIN), 422, "validation_error"
    )
    assert_error(client.get("/api/tasks", params={"status": "weird"}, headers=ADMIN), 422, "validation_error")
    assert_error(client.get("/api/tasks", params={"limit": 501}, headers=ADMIN), 422, "validation_error")


def test_status_filter_and_type_stats_see_expired_locks(client: TestClient) -> None:
    for _ in range(4):
        create(client)
    create(client, task_type="Other")
    a, b, c = lock(client, limit=3, lease_seconds=1)
    client.post(f"/api/tasks/{a['id']}/complete", json={"lock_token": a["lock_token"]}, headers=ADMIN)
    client.post(
        f"/api/tasks/{b['id']}/fail",
        json={"lock_token": b["lock_token"], "error": "x", "retry": False},
        headers=ADMIN,
    )
    time.sleep(1.1)
    expired = client.get("/api/tasks", params={"status": "expired"}, headers=ADMIN).json()["items"]
    assert [t["id"] for t in expired] == [c["id"]]
    stats = {s["task_type"]: s for s in client.get("/api/task-types", headers=ADMIN).json()["items"]}
    eshop = stats[TYPE]
    assert (eshop["pending"], eshop["locked"], eshop["expired"], eshop["completed"], eshop["failed"]) == (
        1,
        0,
        1,
        1,
        1,
    )
    assert eshop["oldest_pending_at"] is not None
    assert stats["Other"]["pending"] == 1
