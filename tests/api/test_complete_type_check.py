"""Single completion checks a consumer's task types inside the completing transaction (one
transaction per completion on the hot path): a forbidden completion is rolled back."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.helpers import ADMIN


def test_consumer_cannot_complete_another_types_task_even_with_its_token(
    client: TestClient, make_key: Callable[..., dict[str, str]]
) -> None:
    """A valid token of a task of another type: 403, and the task stays locked, uncompleted."""
    consumer = make_key("other-worker", "consumer", ["Other"])
    created = client.post("/api/tasks", json={"task_type": "EshopExport"}, headers=ADMIN).json()
    [held] = client.post("/api/tasks/lock", json={"task_type": "EshopExport"}, headers=ADMIN).json()["items"]
    body = {"lock_token": held["lock_token"], "result": {"ok": True}}
    response = client.post(f"/api/tasks/{created['id']}/complete", json=body, headers=consumer)
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    task = client.get(f"/api/tasks/{created['id']}", headers=ADMIN).json()
    assert task["status"] == "locked" and task["completed_by"] is None
    events = client.get(f"/api/tasks/{created['id']}/events", headers=ADMIN).json()["items"]
    assert [e["event"] for e in events] == ["created", "locked"]
    # The rightful holder still completes it.
    done = client.post(f"/api/tasks/{created['id']}/complete", json=body, headers=ADMIN)
    assert done.status_code == 200 and done.json()["completed_by"] == "bootstrap-admin"


def test_consumer_gets_403_before_lock_lost_and_404_for_unknown(
    client: TestClient, make_key: Callable[..., dict[str, str]]
) -> None:
    """A wrong token on another type's task is 403 (not 409); an unknown id is 404."""
    consumer = make_key("other-worker", "consumer", ["Other"])
    created = client.post("/api/tasks", json={"task_type": "EshopExport"}, headers=ADMIN).json()
    body = {"lock_token": "00000000-0000-0000-0000-000000000001"}
    forbidden = client.post(f"/api/tasks/{created['id']}/complete", json=body, headers=consumer)
    assert forbidden.status_code == 403 and forbidden.json()["error"] == "forbidden"
    missing = "/api/tasks/00000000-0000-0000-0000-000000000002/complete"
    unknown = client.post(missing, json=body, headers=consumer)
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
