"""The hot lane (task_queue_api/hot_lane.py) answers exactly as FastAPI does: the same requests,
well formed and not, sent to the sidecar with the lane and to the same sidecar without it, on
SQLite and PostgreSQL, get the same statuses and the same bodies (ids and times aside)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from backoffice.settings import Settings
from task_queue_api.deps import Caller, get_caller
from task_queue_api.hot_lane import HotLane
from task_queue_api.main import create_app
from tests.helpers import ADMIN

TYPE = "EshopExport"
# Fields that differ between two runs of the same calls (new tasks, new tokens, new times).
VOLATILE = {"id", "lock_token", "available_at", "created_at", "updated_at", "lock_date", "locked_until"}
VOLATILE |= {"completed_date", "first_locked_at"}
INSTANT = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def twins(settings: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    """Two clients on one database: the sidecar as built, and the same app without its lane."""
    plain = create_app(settings)
    plain.user_middleware = [m for m in plain.user_middleware if m.cls is not HotLane]
    assert len(plain.user_middleware) == len(create_app(settings).user_middleware) - 1
    with TestClient(create_app(settings)) as laned, TestClient(plain) as unlaned:
        yield laned, unlaned


def scrub(value: Any, suffix: str) -> Any:
    """The answer without what differs from run to run (the key names end in `suffix`)."""
    if isinstance(value, dict):
        return {k: "<v>" if k in VOLATILE else scrub(v, suffix) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, suffix) for v in value]
    if isinstance(value, str):
        named = value.replace(f"worker{suffix}", "worker").replace(f"other{suffix}", "other")
        return INSTANT.sub("<instant>", UUID.sub("<uuid>", named))
    return value


def conversation(client: TestClient, suffix: str, worker: dict[str, str], other: dict[str, str]) -> list[Any]:
    """Every kind of hot call, good and bad; each answer as (status, body)."""
    answers: list[Any] = []

    def post(path: str, headers: dict[str, str], **kwargs: Any) -> Any:
        response = client.post(path, headers=headers, **kwargs)
        body = response.json() if response.content else None
        answers.append((UUID.sub("<uuid>", path), response.status_code, scrub(body, suffix)))
        return body

    held: dict[str, Any] = {}
    for _ in range(3):
        client.post("/api/tasks", json={"task_type": TYPE, "data": {"n": 1}}, headers=ADMIN)
    lock = "/api/tasks/lock"
    post(lock, {"content-type": "application/json"}, content=b'{"task_type": 1}')  # no key, bad body
    post(lock, {**worker, "content-type": "application/json"}, content=b"{not json")
    post(lock, {**worker, "content-type": "text/plain"}, content=b'{"task_type": "EshopExport"}')
    post(lock, worker, json={"task_type": TYPE, "limit": 0})
    post(lock, worker, json={"task_type": TYPE, "surprise": True})
    post(lock, worker, json={"task_type": "Other"})  # not the key's type: 403
    post(lock, worker, json={"task_type": TYPE, "lease_seconds": 10**6})
    post(lock, {**worker, "content-type": "application/json"}, content=b"")
    held.update(post(lock, worker, json={"task_type": TYPE})["items"][0])
    token = held["lock_token"]
    done = f"/api/tasks/{held['id']}/complete"
    post("/api/tasks/not-a-uuid/complete", worker, json={"lock_token": token, "result": {}})
    post(f"/api/tasks/{uuid.uuid4()}/complete", worker, json={"lock_token": token, "result": {}})
    post(done, other, json={"lock_token": token, "result": {}})  # another type's key
    post(done, worker, json={"lock_token": str(uuid.uuid4()), "result": {}})
    post(done, worker, json={"lock_token": token, "result": {"bad": "\u0000"}})
    post(f"/api/tasks/{held['id']}/extend", worker, json={"lock_token": token, "lease_seconds": 60})
    post(done, worker, json={"lock_token": token, "result": {"ok": True}})
    post(done, worker, json={"lock_token": token, "result": {"ok": True}})  # already completed
    [second] = post(lock, worker, json={"task_type": TYPE})["items"]
    post(f"/api/tasks/{second['id']}/fail", worker, json={"lock_token": second["lock_token"], "error": "x"})
    [third] = post(lock, worker, json={"task_type": TYPE})["items"]
    items = [
        {"id": third["id"], "lock_token": third["lock_token"], "result": {"ok": 1}},
        {"id": str(uuid.uuid4()), "lock_token": str(uuid.uuid4()), "result": {}},
    ]
    post("/api/tasks/complete", worker, json={"items": items})
    post("/api/tasks/complete", worker, json={"items": []})
    return answers


def test_the_lane_answers_as_fastapi_does(twins: tuple[TestClient, TestClient]) -> None:
    laned, unlaned = twins
    via_fastapi: list[str] = []  # the hot calls FastAPI dispatched on the laned sidecar

    async def counted(request: Request) -> Caller:
        via_fastapi.append(request.url.path)
        return await get_caller(request)

    assert isinstance(laned.app, FastAPI)
    laned.app.dependency_overrides[get_caller] = counted
    keys = []
    for n, client in enumerate(twins):
        made = []
        for name, types in (("worker", [TYPE]), ("other", ["Other"])):
            body = {"name": f"{name}-{'AB'[n]}", "role": "consumer", "task_types": types}
            created = client.post("/api/keys", json=body, headers=ADMIN)
            assert created.status_code == 201, created.text
            made.append({"x-functions-key": created.json()["key"]})
        keys.append(made)
    with_lane = conversation(laned, "-A", *keys[0])
    without = conversation(unlaned, "-B", *keys[1])
    statuses = [a[1] for a in with_lane]
    assert {200, 401, 403, 404, 409, 422} <= set(statuses), statuses
    for one, other in zip(with_lane, without, strict=True):
        assert one == other
    # FastAPI asked for the caller of 8 calls: the keyless one (its 401) and those it refuses
    # (422): text/plain, limit 0, an unknown field, no body, a path id that is no UUID, a NUL in
    # the result, an empty batch. Not-JSON went its way too, refused before the caller is asked.
    # The lane served the other 13.
    assert len(via_fastapi) == 8, via_fastapi
    assert len(with_lane) == 22


def test_a_completion_through_the_lane_is_timed_under_its_route(
    client: TestClient, worker: dict[str, str]
) -> None:
    client.post("/api/tasks", json={"task_type": TYPE, "data": {}}, headers=ADMIN)
    [task] = client.post("/api/tasks/lock", json={"task_type": TYPE}, headers=worker).json()["items"]
    body = {"lock_token": task["lock_token"], "result": {}}
    assert client.post(f"/api/tasks/{task['id']}/complete", json=body, headers=worker).status_code == 200
    metrics = client.get("/metrics", headers=ADMIN).text
    assert 'route="/api/tasks/{task_id}/complete",status="200"' in metrics
    assert 'route="/api/tasks/lock",status="200"' in metrics
