"""A client's mistakes that PostgreSQL used to answer with a 500 or a dropped connection: crafted
list cursors, the NUL character (U+0000) in parameters and JSON, NaN/Infinity in a JSON body,
instants outside the calendar. Each is a 422 `{error, message}` on both databases, refused at the
edge of the API, and nothing is stored.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import ADMIN, assert_error

JSON = {**ADMIN, "content-type": "application/json"}


def cursor_of(stamp: str) -> str:
    """A cursor shaped like ours, pointing after `stamp`."""
    raw = f"{stamp}|{uuid.uuid4()}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def post_raw(client: TestClient, url: str, body: dict[str, Any], method: str = "POST") -> Any:
    """Send `body` as Python's json.dumps writes it: NUL as \\u0000, NaN and Infinity bare."""
    return client.request(method, url, content=json.dumps(body), headers=JSON)


def task_count(client: TestClient) -> int:
    """How many tasks the admin sees."""
    return len(client.get("/api/tasks", headers=ADMIN).json()["items"])


@pytest.mark.parametrize(
    "stamp", ["2024-05-01T10:00:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
)
def test_a_cursor_with_a_zoneless_or_off_calendar_time_is_refused(client: TestClient, stamp: str) -> None:
    """Our cursors always carry a zone; a crafted one without (or outside years 1-9999 in UTC) is a
    422 that says to pass next_cursor, not a 500."""
    response = client.get("/api/tasks", params={"cursor": cursor_of(stamp)}, headers=ADMIN)
    assert "next_cursor" in assert_error(response, 422, "validation_error")["message"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("created_from", "0001-01-01T00:00:00+14:00"), ("completed_to", "9999-12-31T23:59-14:00")],
)
def test_a_filter_instant_outside_the_calendar_is_refused(client: TestClient, name: str, value: str) -> None:
    """An instant that has no UTC time in years 1-9999 is a 422 naming the parameter."""
    response = client.get("/api/tasks", params={name: value}, headers=ADMIN)
    assert name in assert_error(response, 422, "validation_error")["message"]


@pytest.mark.parametrize(
    ("method", "url", "name"),
    [
        ("GET", "/api/tasks?created_by=a%00b", "created_by"),
        ("GET", "/api/tasks?completed_by=%00", "completed_by"),
        ("GET", "/api/tasks?cursor=abc%00", "cursor"),
        ("GET", "/api/tasks?x%00y=1", "xy"),
        ("DELETE", "/api/keys/a%00b", "name"),
        ("GET", "/api/jobs/a%00b", "job_id"),
        ("GET", "/api/transport-boxes/a%00b", "code"),
    ],
)
def test_nul_in_a_query_or_path_parameter_is_refused(
    client: TestClient, method: str, url: str, name: str
) -> None:
    """PostgreSQL text cannot hold NUL: any parameter holding one is a 422 that names it."""
    message = assert_error(client.request(method, url, headers=ADMIN), 422, "validation_error")["message"]
    assert f"'{name}'" in message and "NUL" in message


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"task_type": "EshopExport", "data": {"note": "a\x00b"}}, "data.note"),
        (
            {"task_type": "EshopExport", "data": {"lines": [{"sku": "A1"}, {"sku": "\x00"}]}},
            "data.lines[1].sku",
        ),
        ({"task_type": "EshopExport", "data": {"bad\x00key": 1}}, "a key name in data"),
        ({"task_type": "EshopExport", "idempotency_key": "order-7\x00"}, "idempotency_key"),
        ({"task_type": "Eshop\x00Export"}, "task_type"),
    ],
)
def test_nul_inside_a_created_task_is_refused(client: TestClient, body: dict[str, Any], where: str) -> None:
    """jsonb cannot hold \\u0000, so we refuse it on both databases alike (422 naming the place)
    rather than store it on one and fail on the other; nothing is stored."""
    message = assert_error(post_raw(client, "/api/tasks", body), 422, "validation_error")["message"]
    assert where in message and "NUL" in message
    assert task_count(client) == 0


@pytest.fixture
def held(client: TestClient) -> dict[str, Any]:
    """An EshopExport task locked by the admin, with its lock token."""
    client.post("/api/tasks", json={"task_type": "EshopExport", "data": {"n": 1}}, headers=ADMIN)
    [task] = client.post("/api/tasks/lock", json={"task_type": "EshopExport"}, headers=ADMIN).json()["items"]
    return dict(task)


@pytest.mark.parametrize(
    ("action", "extra"),
    [
        ("complete", {"result": {"file": "a\x00b"}}),
        ("complete", {"result": float("inf")}),
        ("fail", {"error": "disk \x00 full"}),
        ("batch", {"result": [float("nan")]}),
    ],
)
def test_nul_or_nan_when_finishing_a_task_is_refused(
    client: TestClient, held: dict[str, Any], action: str, extra: dict[str, Any]
) -> None:
    """Results and error messages follow the same rule; the task stays locked for a proper retry."""
    item = {"lock_token": held["lock_token"], **extra}
    if action == "batch":
        response = post_raw(client, "/api/tasks/complete", {"items": [{"id": held["id"], **item}]})
    else:
        response = post_raw(client, f"/api/tasks/{held['id']}/{action}", item)
    assert_error(response, 422, "validation_error")
    assert client.get(f"/api/tasks/{held['id']}", headers=ADMIN).json()["status"] == "locked"


@pytest.mark.parametrize(
    ("url", "method", "body", "where"),
    [
        ("/api/tasks", "POST", {"task_type": "EshopExport", "data": {"x": float("nan")}}, "data.x is NaN"),
        ("/api/tasks", "POST", {"task_type": "EshopExport", "data": {"x": [float("-inf")]}}, "-Infinity"),
        ("/api/tasks", "POST", {"task_type": "EshopExport", "priority": float("nan")}, "priority is NaN"),
        (
            "/api/tasks/lock",
            "POST",
            {"task_type": "EshopExport", "wait_seconds": float("inf")},
            "wait_seconds",
        ),
        ("/api/jobs/Controlling/run", "POST", {"parameters": {"x": float("nan")}}, "parameters.x"),
    ],
)
def test_nan_and_infinity_in_a_body_are_refused(
    client: TestClient, url: str, method: str, body: dict[str, Any], where: str
) -> None:
    """NaN and Infinity are not JSON (Python's parser takes them; jsonb and our responses cannot)."""
    message = assert_error(post_raw(client, url, body, method), 422, "validation_error")["message"]
    assert where in message
    assert task_count(client) == 0


def test_nul_in_a_task_update_changes_nothing(client: TestClient) -> None:
    """PATCH data with a NUL is a 422 and leaves the task at its version."""
    task = client.post(
        "/api/tasks", json={"task_type": "EshopExport", "data": {"n": 1}}, headers=ADMIN
    ).json()
    response = post_raw(client, f"/api/tasks/{task['id']}", {"data": {"n": "\x00"}}, "PATCH")
    assert_error(response, 422, "validation_error")
    assert client.get(f"/api/tasks/{task['id']}", headers=ADMIN).json()["version"] == task["version"]


def test_text_that_only_looks_hostile_is_stored_faithfully(client: TestClient) -> None:
    """Only the NUL itself is refused: the six characters `\\u0000`, other control characters,
    Czech text and large exact numbers round-trip unchanged on both databases."""
    data = {
        "escaped": "\\u0000 is just text",
        "controls": "\x01\t\x1f\x7f",
        "name": "Příliš žluťoučký kůň",
        "braces": {"{problem}": "{0}"},
        "big": 12345678901234567890,
        "nested": [[[{"ok": True}]]],
    }
    created = post_raw(client, "/api/tasks", {"task_type": "EshopExport", "data": data})
    assert created.status_code == 201, created.text
    assert client.get(f"/api/tasks/{created.json()['id']}", headers=ADMIN).json()["data"] == data


def nested(depth: int) -> Any:
    """A list nested `depth` levels deep."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_json_nested_too_deep_to_read_back_is_refused(client: TestClient) -> None:
    """500 levels were stored, then every read of the task was a 500 (the response cannot be
    written); now over 100 levels is a 422, and 90 levels round-trip."""
    deep = {"task_type": "EshopExport", "data": {"tree": nested(500)}}
    assert (
        "nests deeper than 100"
        in assert_error(post_raw(client, "/api/tasks", deep), 422, "validation_error")["message"]
    )
    assert task_count(client) == 0
    fine = {"task_type": "EshopExport", "data": {"tree": nested(90)}}
    created = post_raw(client, "/api/tasks", fine)
    assert created.status_code == 201, created.text
    assert client.get(f"/api/tasks/{created.json()['id']}", headers=ADMIN).json()["data"] == fine["data"]
