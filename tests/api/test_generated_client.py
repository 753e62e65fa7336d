"""The sidecar as an integrator meets it: a client generated from /openapi.json
(openapi-python-client) with short, stable function names, draining a task over real HTTP.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backoffice.settings import Settings
from task_queue_api.main import create_app
from tests.helpers import ADMIN
from tests.servers import serve

PACKAGE = "sidecar_client"

# The public contract: generated clients name their functions after these. Change one only
# together with every integrator.
OPERATION_IDS = {
    "GET /healthz": "healthz",
    "GET /readyz": "readyz",
    "GET /metrics": "metrics",
    "GET /api/keys": "list_keys",
    "POST /api/keys": "create_key",
    "DELETE /api/keys/{name}": "revoke_key",
    "POST /api/tasks/lock": "lock_tasks",
    "POST /api/tasks/complete": "complete_batch",
    "POST /api/tasks/{task_id}/complete": "complete_task",
    "POST /api/tasks/{task_id}/fail": "fail_task",
    "POST /api/tasks/{task_id}/extend": "extend_lock",
    "POST /api/tasks": "create_task",
    "GET /api/tasks": "list_tasks",
    "GET /api/tasks/{task_id}": "get_task",
    "PATCH /api/tasks/{task_id}": "update_task",
    "DELETE /api/tasks/{task_id}": "delete_task",
    "POST /api/tasks/{task_id}/retry": "retry_task",
    "GET /api/tasks/{task_id}/events": "list_task_events",
    "GET /api/task-types": "list_task_types",
    "PUT /api/task-types/{task_type}": "put_task_type",
    "GET /api/task-types/{task_type}": "get_task_type",
    "DELETE /api/task-types/{task_type}": "delete_task_type",
    "GET /api/jobs": "list_jobs",
    "GET /api/jobs/{job_id}": "get_job",
    "PUT /api/jobs/{job_id}/enabled": "set_job_enabled",
    "PUT /api/jobs/{job_id}/schedule": "set_job_schedule",
    "DELETE /api/jobs/{job_id}/schedule": "reset_job_schedule",
    "GET /api/jobs/{job_id}/events": "list_job_events",
    "POST /api/jobs/{job_id}/run": "run_job",
    "POST /api/transport-boxes": "create_box",
    "GET /api/transport-boxes": "list_boxes",
    "GET /api/transport-boxes/{code}": "get_box",
    "PUT /api/transport-boxes/{code}/state": "change_box_state",
}


def _schema() -> dict[str, Any]:
    # The schema does not depend on the database; no lifespan is needed to build it.
    schema: dict[str, Any] = create_app(Settings(database_url="sqlite://")).openapi()
    return schema


def test_every_operation_has_its_short_stable_id() -> None:
    """Each operation's id is the short name integrators' generated functions carry, unique."""
    ids = {
        f"{method.upper()} {path}": operation["operationId"]
        for path, operations in _schema()["paths"].items()
        for method, operation in operations.items()
    }
    assert ids == OPERATION_IDS
    assert [i for i, n in Counter(ids.values()).items() if n > 1] == []


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """A client package generated from the app's schema by the openapi-python-client CLI, imported."""
    root = tmp_path_factory.mktemp("generated")
    (root / "schema.json").write_text(json.dumps(_schema()))
    # No post hooks: formatting the generated code (ruff) is not what is under test.
    (root / "config.yaml").write_text("post_hooks: []\n")
    cli = Path(sys.executable).parent / "openapi-python-client"
    command = [str(cli), "generate", "--path", "schema.json", "--output-path", PACKAGE]
    command += ["--meta", "none", "--config", "config.yaml", "--fail-on-warning"]
    run = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def test_a_generated_client_drains_a_task(generated: ModuleType, client: TestClient, make_key: Any) -> None:
    """An admin creates an EshopExport task; a consumer locks and completes it with the generated
    client's `lock_tasks` and `complete_task` against the sidecar over HTTP."""
    created = client.post(
        "/api/tasks", json={"task_type": "EshopExport", "data": {"order": 7}}, headers=ADMIN
    )
    assert created.status_code == 201, created.text
    consumer_key = make_key("eshop-export", "consumer", ["EshopExport"])["x-functions-key"]
    lock_tasks = importlib.import_module(f"{PACKAGE}.api.tasks.lock_tasks")
    complete_task = importlib.import_module(f"{PACKAGE}.api.tasks.complete_task")
    models = importlib.import_module(f"{PACKAGE}.models")

    # The test client runs the app's lifespan; uvicorn serves the same app over real HTTP.
    with serve(client.app) as base_url:
        api = generated.AuthenticatedClient(
            base_url=base_url, token=consumer_key, prefix="", auth_header_name="x-functions-key"
        )
        with api:
            locked = lock_tasks.sync(client=api, body=models.LockRequest(task_type="EshopExport"))
            assert isinstance(locked, models.LockResponse), locked
            [task] = locked.items
            assert str(task.id) == created.json()["id"]
            assert task.data.to_dict() == {"order": 7}
            done = complete_task.sync(
                task.id,
                client=api,
                body=models.CompleteRequest(lock_token=task.lock_token, result={"rows": 3}),
            )
            assert isinstance(done, models.TaskPublic), done
            assert done.status == models.TaskPublicStatus.COMPLETED

    stored = client.get(f"/api/tasks/{task.id}", headers=ADMIN).json()
    assert (stored["status"], stored["result"], stored["completed_by"]) == (
        "completed",
        {"rows": 3},
        "eshop-export",
    )
