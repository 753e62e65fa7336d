"""Task-type definitions over HTTP, on SQLite and PostgreSQL: PUT/GET/DELETE, the list, data
schemas on create and PATCH, required definitions, the type's max_attempts, error_kind filter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backoffice.db import create_db_engine
from backoffice.settings import Settings
from tests.helpers import ADMIN, app_client, assert_error

TYPE = "EshopExport"
SCHEMA = {
    "type": "object",
    "required": ["sku"],
    "properties": {"sku": {"type": "string"}, "lines": {"type": "array", "items": {"type": "integer"}}},
}


def put(client: TestClient, task_type: str = TYPE, headers: dict[str, str] = ADMIN, **body: Any) -> Any:
    return client.put(f"/api/task-types/{task_type}", json=body, headers=headers)


def test_put_creates_then_replaces_and_get_shows_counts(client: TestClient, operator: dict[str, str]) -> None:
    first = put(client, headers=operator, description="Export", max_attempts=3, data_schema=SCHEMA)
    assert first.status_code == 201, first.text
    assert first.json()["max_attempts"] == 3 and first.json()["created_by"] == "ops"
    client.post("/api/tasks", json={"task_type": TYPE, "data": {"sku": "A"}}, headers=ADMIN)
    again = put(client, headers=operator, lease_seconds=60)
    assert again.status_code == 200
    # PUT replaces the whole definition: fields left out are unset.
    assert again.json()["lease_seconds"] == 60 and again.json()["max_attempts"] is None
    detail = client.get(f"/api/task-types/{TYPE}", headers=ADMIN).json()
    assert detail["definition"]["lease_seconds"] == 60
    assert detail["counts"]["pending"] == 1 and detail["counts"]["completed"] == 0


def test_list_carries_definitions_and_defined_types_without_tasks(client: TestClient) -> None:
    put(client, "Defined", description="no tasks yet")
    client.post("/api/tasks", json={"task_type": "Undefined"}, headers=ADMIN)
    items = {i["task_type"]: i for i in client.get("/api/task-types", headers=ADMIN).json()["items"]}
    assert items["Defined"]["definition"]["description"] == "no tasks yet"
    assert items["Defined"]["pending"] == 0
    assert items["Undefined"]["definition"] is None and items["Undefined"]["pending"] == 1


def test_delete_removes_definition_but_keeps_tasks(client: TestClient) -> None:
    put(client, data_schema=SCHEMA)
    created = client.post("/api/tasks", json={"task_type": TYPE, "data": {"sku": "A"}}, headers=ADMIN)
    assert client.delete(f"/api/task-types/{TYPE}", headers=ADMIN).status_code == 204
    assert_error(client.get(f"/api/task-types/{TYPE}", headers=ADMIN), 404, "not_found")
    assert_error(client.delete(f"/api/task-types/{TYPE}", headers=ADMIN), 404, "not_found")
    assert client.get(f"/api/tasks/{created.json()['id']}", headers=ADMIN).status_code == 200
    # Without the definition any data goes again.
    assert client.post("/api/tasks", json={"task_type": TYPE, "data": {}}, headers=ADMIN).status_code == 201


def test_consumers_may_read_their_types_only_and_never_define(
    client: TestClient, worker: dict[str, str]
) -> None:
    put(client)
    put(client, "Payroll")
    assert client.get(f"/api/task-types/{TYPE}", headers=worker).status_code == 200
    assert_error(client.get("/api/task-types/Payroll", headers=worker), 403, "forbidden")
    assert_error(put(client, headers=worker), 403, "forbidden")
    assert_error(client.delete(f"/api/task-types/{TYPE}", headers=worker), 403, "forbidden")
    listed = [i["task_type"] for i in client.get("/api/task-types", headers=worker).json()["items"]]
    assert listed == [TYPE]


@pytest.mark.parametrize(
    "body",
    [
        {"data_schema": {"type": "no-such-type"}},
        {"data_schema": {"required": "sku"}},
        {"data_schema": {"properties": {"sku": {"minLength": -1}}}},
        {"lease_seconds": 0},
        {"lease_seconds": 10**6},
        {"max_attempts": 0},
        {"retention_days": 0},
        {"unknown": 1},
    ],
)
def test_invalid_definition_is_422_and_nothing_is_stored(client: TestClient, body: dict[str, Any]) -> None:
    assert_error(put(client, **body), 422, "validation_error")
    assert_error(client.get(f"/api/task-types/{TYPE}", headers=ADMIN), 404, "not_found")


def test_create_and_patch_are_checked_against_the_schema(client: TestClient) -> None:
    put(client, data_schema=SCHEMA)
    missing = assert_error(
        client.post("/api/tasks", json={"task_type": TYPE}, headers=ADMIN), 422, "validation_error"
    )
    assert "'sku' is a required property" in missing["message"]
    bad = client.post(
        "/api/tasks", json={"task_type": TYPE, "data": {"sku": "A", "lines": [1, "two"]}}, headers=ADMIN
    )
    body = assert_error(bad, 422, "validation_error")
    assert body["path"] == "data.lines[1]" and "data.lines[1]" in body["message"]
    ok = client.post(
        "/api/tasks", json={"task_type": TYPE, "data": {"sku": "A", "lines": [1]}}, headers=ADMIN
    )
    assert ok.status_code == 201
    task_id = ok.json()["id"]
    patched = client.patch(f"/api/tasks/{task_id}", json={"data": {"sku": 7}}, headers=ADMIN)
    assert assert_error(patched, 422, "validation_error")["path"] == "data.sku"
    assert client.get(f"/api/tasks/{task_id}", headers=ADMIN).json()["data"] == {"sku": "A", "lines": [1]}
    # Fields other than data are not re-checked.
    assert client.patch(f"/api/tasks/{task_id}", json={"priority": 3}, headers=ADMIN).status_code == 200


def test_unresolvable_ref_is_a_422_not_a_500(client: TestClient) -> None:
    assert put(client, data_schema={"$ref": "#/$defs/missing"}).status_code == 201
    response = client.post("/api/tasks", json={"task_type": TYPE, "data": {}}, headers=ADMIN)
    assert_error(response, 422, "invalid_data_schema")


def test_remote_refs_are_never_fetched(client: TestClient) -> None:
    # Nothing listens on port 9 of loopback; a fetch would fail differently (and must not happen).
    assert put(client, data_schema={"$ref": "http://127.0.0.1:9/schema.json"}).status_code == 201
    response = client.post("/api/tasks", json={"task_type": TYPE, "data": {}}, headers=ADMIN)
    assert_error(response, 422, "invalid_data_schema")


def test_create_without_max_attempts_takes_the_types(client: TestClient) -> None:
    put(client, max_attempts=2)
    assert client.post("/api/tasks", json={"task_type": TYPE}, headers=ADMIN).json()["max_attempts"] == 2
    explicit = client.post("/api/tasks", json={"task_type": TYPE, "max_attempts": 7}, headers=ADMIN)
    assert explicit.json()["max_attempts"] == 7
    other = client.post("/api/tasks", json={"task_type": "Other"}, headers=ADMIN)
    assert other.json()["max_attempts"] == 5


@pytest.fixture
def strict_client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    """The sidecar with BACKOFFICE_REQUIRE_TASK_TYPE_DEFINITIONS=true."""
    with app_client(make_settings(require_task_type_definitions=True)) as client:
        yield client


def test_required_definitions_refuse_undefined_types(strict_client: TestClient) -> None:
    response = strict_client.post("/api/tasks", json={"task_type": TYPE}, headers=ADMIN)
    assert_error(response, 422, "unknown_task_type")
    put(strict_client)
    assert strict_client.post("/api/tasks", json={"task_type": TYPE}, headers=ADMIN).status_code == 201


def test_error_kind_filter_and_field(client: TestClient, settings: Settings) -> None:
    ids = [client.post("/api/tasks", json={"task_type": TYPE}, headers=ADMIN).json()["id"] for _ in range(3)]
    # last_error_kind as the fail call records it (over HTTP, the hot path)
    held = client.post("/api/tasks/lock", json={"task_type": TYPE, "limit": 2}, headers=ADMIN).json()["items"]
    assert [t["id"] for t in held] == ids[:2]
    for task, kind in zip(held, ("timeout", "validation"), strict=True):
        body = {"lock_token": task["lock_token"], "error": "x", "retry": False, "error_kind": kind}
        assert client.post(f"/api/tasks/{task['id']}/fail", json=body, headers=ADMIN).status_code == 200
    listed = client.get("/api/tasks", params={"error_kind": "timeout"}, headers=ADMIN).json()["items"]
    assert [t["id"] for t in listed] == [ids[0]] and listed[0]["last_error_kind"] == "timeout"
    assert client.get(f"/api/tasks/{ids[2]}", headers=ADMIN).json()["last_error_kind"] is None
    assert_error(
        client.get("/api/tasks", params={"error_kind": "bogus"}, headers=ADMIN), 422, "validation_error"
    )


def test_defaults_for_gives_the_hot_path_the_types_settings(client: TestClient, settings: Settings) -> None:
    from backoffice.queue.task_types import TaskTypeStore, TypeDefaults

    put(client, lease_seconds=120, retry_backoff_seconds=2.5)
    engine = create_db_engine(settings)
    try:
        types = TaskTypeStore(engine, settings)
        assert types.defaults_for(TYPE) == TypeDefaults(120, None, 2.5)
        assert types.defaults_for("Undefined") is None
    finally:
        engine.dispose()


def test_patch_with_a_cold_cache_reads_the_definition_in_its_transaction(
    make_settings: Callable[..., Settings],
) -> None:
    # Cache off: every create and PATCH reads the definition (SQLite: on the write transaction's
    # own connection, or it would wait for its own lock).
    with app_client(make_settings(task_type_cache_seconds=0)) as client:
        put(client, data_schema=SCHEMA)
        task_id = client.post(
            "/api/tasks", json={"task_type": TYPE, "data": {"sku": "A"}}, headers=ADMIN
        ).json()["id"]
        bad = client.patch(f"/api/tasks/{task_id}", json={"data": {}}, headers=ADMIN)
        assert assert_error(bad, 422, "validation_error")["path"] == "data"
        good = client.patch(f"/api/tasks/{task_id}", json={"data": {"sku": "B"}}, headers=ADMIN)
        assert good.status_code == 200 and good.json()["data"] == {"sku": "B"}
