"""The sidecar's edge (task_queue_api/edge.py): body size first, the key before the body, no keys in logs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from backoffice.settings import Settings
from tests.helpers import ADMIN, ADMIN_KEY, app_client, assert_error, auth, statements_on
from tests.sidecar import Sidecar

LIMIT = 1000  # the request body limit of the `small` sidecar
JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
MiB = 1024 * 1024


@pytest.fixture
def small(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    """A client of a sidecar whose request bodies may be LIMIT bytes at most."""
    with app_client(make_settings(max_request_bytes=LIMIT)) as client:
        yield client


def streamed(body: bytes, size: int = 100) -> Iterator[bytes]:
    """`body` in chunks, so it is sent chunked, without a Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_declared_body_over_the_limit_gets_413_before_anything_else(small: TestClient) -> None:
    for headers in (ADMIN, {}):  # keyless too: the size is checked first
        response = small.post("/api/tasks/lock", content=b"x" * (LIMIT + 1), headers={**headers, **JSON})
        assert_error(response, 413, "payload_too_large")
        assert response.headers["connection"] == "close"  # the rest of the body is never read
    at_limit = small.post("/api/tasks/lock", content=b"x" * LIMIT, headers={**ADMIN, **JSON})
    assert_error(at_limit, 422, "validation_error")  # read and parsed: not JSON


def test_a_chunked_body_is_cut_off_when_it_passes_the_limit(small: TestClient) -> None:
    body = json.dumps({"task_type": "EshopExport", "data": {"pad": "x" * LIMIT}}).encode()
    response = small.post("/api/tasks", content=streamed(body), headers={**ADMIN, **JSON})
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_error(response, 413, "payload_too_large")
    assert small.get("/api/tasks", headers=ADMIN).json()["items"] == []  # the route never ran


def test_signin_form_posts_are_bounded(small: TestClient) -> None:
    form = b"key=" + b"x" * LIMIT
    assert_error(small.post("/signin", content=form, headers=FORM), 413, "payload_too_large")
    assert_error(small.post("/signin", content=streamed(form), headers=FORM), 413, "payload_too_large")


def test_the_key_is_checked_before_the_body_is_read(client: TestClient) -> None:
    # The body is not JSON: reading it first would answer 422.
    for headers in ({}, auth("bok_a-guessed-key-that-is-not-ours")):
        response = client.post("/api/tasks/lock", content=b"{not json", headers={**headers, **JSON})
        assert_error(response, 401, "unauthorized")
        assert response.headers["connection"] == "close"  # the unread body goes with the connection
    response = client.put("/api/jobs/Controlling/enabled", content=b"[", headers=JSON)
    assert_error(response, 401, "unauthorized")
    # Refused before the body, still counted under their routes.
    metrics = client.get("/metrics").text
    assert 'method="POST",route="/api/tasks/lock",status="401"} 2.0' in metrics
    # With a key, the body is read and judged as before.
    response = client.post("/api/tasks/lock", content=b"{not json", headers={**ADMIN, **JSON})
    assert_error(response, 422, "validation_error")


def test_roles_are_still_checked_after_the_edge(client: TestClient, worker: dict[str, str]) -> None:
    response = client.post("/api/tasks", json={"task_type": "EshopExport", "data": {}}, headers=worker)
    assert_error(response, 403, "forbidden")
    assert client.get(f"/api/tasks?code={ADMIN_KEY}").status_code == 200


def test_a_key_is_looked_up_once_per_request(client: TestClient, make_key: Any) -> None:
    operator = make_key("ops", "operator")
    with statements_on(client.app.state.ctx.engine) as statements:  # type: ignore[attr-defined]
        assert client.get("/api/tasks", headers=operator).status_code == 200
    assert sum("api_keys" in s for s in statements) == 1


def test_keys_refused_at_the_edge_count_towards_the_throttle(make_settings: Callable[..., Settings]) -> None:
    with app_client(make_settings(auth_failure_limit=2)) as client:
        for _ in range(2):
            response = client.post("/api/tasks/lock", content=b"{", headers={**auth("wrong-key-1"), **JSON})
            assert_error(response, 401, "unauthorized")
        assert_error(client.get("/api/tasks", headers=ADMIN), 429, "too_many_attempts")


def test_a_key_check_the_database_cannot_answer_is_a_503_under_its_route() -> None:
    settings = Settings(
        database_url="postgresql://postgres@127.0.0.1:1/nowhere",
        admin_key=ADMIN_KEY,
        db_connect_timeout_seconds=2,
    )
    with app_client(settings) as client:
        response = client.post("/api/tasks/lock", content=b"{not json", headers={**ADMIN, **JSON})
        assert_error(response, 503, "database_unavailable")  # not 422: the body was never read
        assert response.headers["retry-after"]
        metrics = client.get("/metrics").text
    assert 'method="POST",route="/api/tasks/lock",status="503"' in metrics


# Real servers (uvicorn in a child process). The edge is the same on both databases: SQLite only.


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_real_server_refuses_a_huge_chunked_body_without_reading_it(
    settings: Settings, tmp_path: Path
) -> None:
    size = 64 * MiB
    generated = 0

    def body() -> Iterator[bytes]:
        nonlocal generated
        generated, chunk = 0, b"x" * (64 * 1024)
        while generated < size:
            generated += len(chunk)
            yield chunk

    with Sidecar(settings, log_path=tmp_path / "sidecar.log") as sidecar:
        url = f"{sidecar.url}/api/tasks/lock"
        too_large = httpx.post(url, content=body(), headers={**ADMIN, **JSON}, timeout=120)
        assert too_large.request.headers["transfer-encoding"] == "chunked"
        assert_error(too_large, 413, "payload_too_large")
        # The server answered and closed the connection long before the body ended.
        assert generated < size
        keyless = httpx.post(url, content=body(), headers=JSON, timeout=120)
        assert_error(keyless, 401, "unauthorized")
        assert generated < size


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_keys_sent_as_code_never_reach_the_sidecar_log(settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "sidecar.log"
    with Sidecar(settings, log_path=log) as sidecar:
        created = httpx.post(
            f"{sidecar.url}/api/keys?code={ADMIN_KEY}", json={"name": "ops", "role": "operator"}, timeout=30
        )
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        assert httpx.get(f"{sidecar.url}/api/tasks", params={"code": key}, timeout=30).status_code == 200
        guessed = httpx.get(f"{sidecar.url}/api/tasks?limit=5&code=wrong-guess-1234", timeout=30)
        assert guessed.status_code == 401
    text = log.read_text()
    for secret in (ADMIN_KEY, key, "wrong-guess-1234"):
        assert secret not in text
    # The request lines are still logged, the key masked.
    assert '"POST /api/keys?code=*** HTTP/1.1" 201' in text
    assert '"GET /api/tasks?code=*** HTTP/1.1" 200' in text
    assert '"GET /api/tasks?limit=5&code=*** HTTP/1.1" 401' in text


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_access_log_off_leaves_out_the_request_lines(settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "sidecar.log"
    with Sidecar(settings.model_copy(update={"access_log": False}), log_path=log) as sidecar:
        listed = httpx.get(f"{sidecar.url}/api/tasks", headers={"x-functions-key": ADMIN_KEY}, timeout=30)
        assert listed.status_code == 200, listed.text
    text = log.read_text()
    assert "Application startup complete" in text  # the log itself is there
    assert "/api/tasks" not in text and "/readyz" not in text
