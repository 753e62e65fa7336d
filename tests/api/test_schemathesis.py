"""Property-based fuzzing of every operation in the sidecar's OpenAPI schema (schemathesis):
with a valid admin key, no request, valid or not, may get a 5xx.

Half of the generated path parameters are swapped for ids of real tasks (pending, locked,
completed, failed) and a real key name, so the fuzzer reaches past the 404s into the state
checks. The app runs in-process over ASGI with its lifespan started by schemathesis.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi

from backoffice.settings import Settings
from task_queue_api.context import AppContext
from task_queue_api.main import create_app
from tests.helpers import ADMIN

# Examples per operation and generation mode; PostgreSQL runs the same cases on a smaller budget.
EXAMPLES = {"sqlite": 25, "postgresql": 12}


def seed(ctx: AppContext) -> dict[str, list[str]]:
    """Tasks in every stored state and a spare key; their ids and names by path parameter."""
    store = ctx.tasks
    ids = [store.create("seed", "EshopExport", {"n": n})[0].id for n in range(5)]
    ids.append(store.create("seed", "Other", {}, priority=1)[0].id)
    locked = store.lock("EshopExport", "seed", limit=3)
    store.complete(locked[0].id, locked[0].lock_token, {"ok": True}, "seed")  # type: ignore[arg-type]
    store.fail(locked[1].id, locked[1].lock_token, "boom", False, "seed")  # type: ignore[arg-type]
    ctx.keys.create("fuzzed", "consumer", ["EshopExport"], "seed")
    # A defined type whose schema any object matches: creates of it still succeed.
    store.types.put("EshopExport", "seed", {"max_attempts": 3, "data_schema": {"type": "object"}})
    return {
        "task_id": [str(i) for i in ids],
        "name": ["fuzzed", "bootstrap-admin", "nobody"],
        "task_type": ["EshopExport", "Other"],
    }


@pytest.fixture
def api(settings: Settings) -> Iterator[FastAPI]:
    """The sidecar app on the test database; its lifespan is stopped at the end."""
    app = create_app(settings)
    yield app
    # schemathesis starts an app's lifespan on first use and keeps it for the process.
    asgi.shutdown_lifespans()


@pytest.fixture
def api_schema(api: FastAPI) -> Any:
    """The app's OpenAPI schema (loading it starts the app), with real records to point at."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", api)
    known = seed(api.state.ctx)

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
        """Keep the generated value, or swap in a real task id or key name."""
        if not path_parameters:
            return st.just(path_parameters)
        swaps = [
            st.fixed_dictionaries(
                {**{k: st.just(v) for k, v in path_parameters.items()}, name: st.sampled_from(values)}
            )
            for name, values in known.items()
            if name in path_parameters
        ]
        return st.one_of(st.just(path_parameters), *swaps)

    @schema.hook
    def map_body(context: Any, body: Any) -> Any:
        """Shorten valid long-poll waits: an empty queue would hold each call up to 30 s."""
        wait = body.get("wait_seconds") if isinstance(body, dict) else None
        if isinstance(wait, int | float) and not isinstance(wait, bool) and 0 < wait <= 30:
            body["wait_seconds"] = min(wait, 0.2)
        return body

    return schema


def fuzz(operation: Any, mode: GenerationMode, examples: int, seen: Counter[tuple[str, int]]) -> None:
    """Run `examples` generated requests of one mode against one operation."""

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode, hooks=operation.schema.hooks))
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    def run(case: schemathesis.Case) -> None:
        response = case.call_and_validate(headers=ADMIN, checks=[not_a_server_error])
        seen[(operation.label, response.status_code)] += 1

    run()


@pytest.mark.slow  # fuzzes every operation (~30 s): left out of `bin/test --fast`
def test_no_server_errors(api_schema: Any, dialect: str, prefect_server: None) -> None:
    """Every operation answers valid and invalid requests (positive and negative data) without a
    5xx. The jobs routes talk to the Prefect test harness."""
    seen: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode, EXAMPLES[dialect], seen)
            except hypothesis.errors.Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to get wrong: no parameters, no body
            except (Exception, BaseExceptionGroup) as exc:  # every operation's failures, not the first
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert failures == [], "\n\n".join(failures)
    # The fuzzer reached real records, not only 404s and 422s.
    assert seen[("GET /api/tasks/{task_id}", 200)] > 0
    assert seen[("POST /api/tasks", 201)] > 0
    assert {label for label, _ in seen} == {op.label for op in operations}


def _cursor(stamp: str) -> str:
    raw = f"{stamp}|{uuid.UUID(int=1)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _json(value: Any) -> dict[str, Any]:
    """A body as the bytes Python's json.dumps writes: NUL as \\u0000, and NaN/Infinity, which
    HTTP clients refuse to send (schemathesis passes bytes through untouched)."""
    return {"body": json.dumps(value).encode(), "media_type": "application/json"}


# Requests that PostgreSQL answered with a 500 or a dropped connection: crafted cursors, NUL
# (U+0000) in parameters and JSON, NaN/Infinity (not JSON, but Python's parser takes them).
HOSTILE_EXAMPLES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/api/tasks", {"query": {"cursor": _cursor("2024-05-01T10:00:00")}}),
    ("GET", "/api/tasks", {"query": {"cursor": _cursor("0001-01-01T00:00:00+14:00")}}),
    ("GET", "/api/tasks", {"query": {"created_from": "0001-01-01T00:00:00+14:00"}}),
    ("GET", "/api/tasks", {"query": {"created_by": "a\x00b"}}),
    ("GET", "/api/tasks", {"query": {"completed_by": "\x00"}}),
    ("DELETE", "/api/keys/{name}", {"path_parameters": {"name": "a\x00b"}}),
    ("GET", "/api/jobs/{job_id}", {"path_parameters": {"job_id": "a\x00b"}}),
    ("POST", "/api/tasks", _json({"task_type": "EshopExport", "data": {"note": "a\x00b"}})),
    ("POST", "/api/tasks", _json({"task_type": "EshopExport", "data": {"a\x00": 1}})),
    ("POST", "/api/tasks", _json({"task_type": "EshopExport", "idempotency_key": "k\x00"})),
    ("POST", "/api/tasks", _json({"task_type": "EshopExport", "data": {"x": float("nan")}})),
    ("POST", "/api/tasks", _json({"task_type": "EshopExport", "data": {"x": [float("inf")]}})),
    ("POST", "/api/tasks", _json({"task_type": "EshopExport", "not_before": "0001-01-01T00:00:00+01:00"})),
    ("POST", "/api/tasks/lock", _json({"task_type": "EshopExport", "wait_seconds": float("nan")})),
    ("POST", "/api/keys", _json({"name": "a\x00", "role": "admin"})),
    (
        "PUT",
        "/api/task-types/{task_type}",
        {"path_parameters": {"task_type": "A"}, "body": {"data_schema": {"$schema": {}}}},
    ),
    (
        "PUT",
        "/api/task-types/{task_type}",
        {"path_parameters": {"task_type": "A"}, "body": {"data_schema": {"pattern": "["}}},
    ),
    ("GET", "/api/task-types/{task_type}", {"path_parameters": {"task_type": "a\x00b"}}),
]


def test_hostile_examples_are_client_errors(api_schema: Any) -> None:
    """The explicit examples above, sent by schemathesis: each a 4xx `{error, message}`, never a
    5xx, on both databases."""
    answers = []
    for method, path, parts in HOSTILE_EXAMPLES:
        case = api_schema[path][method].Case(**parts)
        response = case.call_and_validate(headers=ADMIN, checks=[not_a_server_error])
        body = response.json()
        answers.append((method, path, response.status_code, sorted(body)))
    assert answers == [(m, p, 422, ["error", "message"]) for m, p, _ in HOSTILE_EXAMPLES]


@pytest.mark.parametrize("field", ["priority", "max_attempts"])
def test_patch_with_null_is_a_validation_error(client: TestClient, field: str) -> None:
    """Found by the fuzzer: an explicit null for a NOT NULL field answered 500; now 422."""
    task = client.post("/api/tasks", json={"task_type": "EshopExport"}, headers=ADMIN).json()
    response = client.patch(f"/api/tasks/{task['id']}", json={field: None}, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert client.get(f"/api/tasks/{task['id']}", headers=ADMIN).json()["version"] == task["version"]
