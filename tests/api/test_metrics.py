"""`GET /metrics` after a known sequence of API calls, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prefect.states import Completed, Failed, Running
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from backoffice.settings import Settings
from tests.deployed import deployed_catalog, in_step
from tests.deployments.conftest import delete_runs_of, deployment, prefect
from tests.helpers import ADMIN, app_client, auth, statements_on
from tests.servers import free_port

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> Samples:
    """Every sample of one scrape, keyed by (sample name, labels)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def post(client: TestClient, url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    response = client.post(url, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_scraped_values_equal_the_known_sequence(
    settings: Settings, client: TestClient, make_key: Any
) -> None:
    worker = make_key("worker-1", "consumer", ["EshopExport", "Label"])
    exports = [
        post(client, "/api/tasks", {"task_type": "EshopExport", "data": {"n": n}}, ADMIN) for n in range(3)
    ]
    post(client, "/api/tasks", {"task_type": "Label", "data": {}}, ADMIN)

    first, second = post(client, "/api/tasks/lock", {"task_type": "EshopExport", "limit": 2}, worker)["items"]
    post(
        client, f"/api/tasks/{first['id']}/complete", {"lock_token": first["lock_token"], "result": 1}, worker
    )
    fail = {"lock_token": second["lock_token"], "error": "bad data", "retry": False}
    post(client, f"/api/tasks/{second['id']}/fail", fail, worker)

    (label,) = post(client, "/api/tasks/lock", {"task_type": "Label", "lease_seconds": 1}, worker)["items"]
    time.sleep(1.2)  # let the one-second lease run out (the numbers below do not depend on time)
    (again,) = post(client, "/api/tasks/lock", {"task_type": "Label"}, worker)["items"]
    assert again["id"] == label["id"]
    client.get(f"/api/tasks/{exports[2]['id']}", headers=ADMIN)
    client.get("/api/tasks/00000000-0000-0000-0000-000000000000", headers=ADMIN)  # 404

    before = datetime.now(UTC)
    samples = scrape(client)
    after = datetime.now(UTC)

    assert value(samples, "backoffice_database_up") == 1
    expected = {
        ("EshopExport", "pending"): 1,
        ("EshopExport", "locked"): 0,
        ("EshopExport", "expired"): 0,
        ("EshopExport", "completed"): 1,
        ("EshopExport", "failed"): 1,
        ("Label", "pending"): 0,
        ("Label", "locked"): 1,
        ("Label", "expired"): 0,
        ("Label", "completed"): 0,
        ("Label", "failed"): 0,
    }
    for (task_type, status), count in expected.items():
        assert value(samples, "backoffice_tasks", task_type=task_type, status=status) == count, (
            task_type,
            status,
        )

    # The oldest pending EshopExport is exports[2]: its age lies between the scrape's bounds.
    created = datetime.fromisoformat(exports[2]["created_at"])
    age = value(samples, "backoffice_task_oldest_pending_age_seconds", task_type="EshopExport")
    assert (before - created).total_seconds() <= age <= (after - created).total_seconds()
    assert value(samples, "backoffice_task_oldest_pending_age_seconds", task_type="Label") == 0

    assert value(samples, "backoffice_task_locks_total") == 4  # 2 exports + the label twice
    assert value(samples, "backoffice_task_completions_total") == 1
    assert value(samples, "backoffice_task_failures_total") == 1
    assert value(samples, "backoffice_task_lock_expiries_total") == 1

    hist = "backoffice_http_request_duration_seconds_count"
    assert value(samples, hist, method="POST", route="/api/tasks", status="201") == 4
    assert value(samples, hist, method="POST", route="/api/tasks/lock", status="200") == 3
    assert value(samples, hist, method="POST", route="/api/tasks/{task_id}/complete", status="200") == 1
    assert value(samples, hist, method="POST", route="/api/tasks/{task_id}/fail", status="200") == 1
    assert value(samples, hist, method="GET", route="/api/tasks/{task_id}", status="200") == 1
    assert value(samples, hist, method="GET", route="/api/tasks/{task_id}", status="404") == 1
    assert not any(dict(labels).get("route", "").startswith("/api/tasks/0000") for _, labels in samples)

    # Another process (a second app on the same database) reports the same queue counters:
    # they come from the audit table, not from the process that served the calls.
    with app_client(settings) as other:
        elsewhere = scrape(other)
    for name in ("locks", "completions", "failures", "lock_expiries"):
        sample = f"backoffice_task_{name}_total"
        assert value(elsewhere, sample) == value(samples, sample), name
    assert (
        hist,
        frozenset({"method": "POST", "route": "/api/tasks", "status": "201"}.items()),
    ) not in elsewhere


def test_counters_only_grow_and_count_each_event_once(client: TestClient, worker: dict[str, str]) -> None:
    totals = []
    for n in range(3):
        post(client, "/api/tasks", {"task_type": "EshopExport", "data": {"n": n}}, ADMIN)
        (task,) = post(client, "/api/tasks/lock", {"task_type": "EshopExport"}, worker)["items"]
        post(
            client,
            f"/api/tasks/{task['id']}/complete",
            {"lock_token": task["lock_token"], "result": n},
            worker,
        )
        samples = scrape(client)
        totals.append(
            (
                value(samples, "backoffice_task_locks_total"),
                value(samples, "backoffice_task_completions_total"),
            )
        )
    assert totals == [(1, 1), (2, 2), (3, 3)]


def test_unknown_paths_share_one_route_label(client: TestClient) -> None:
    for path in ("/nope/1", "/nope/2", "/wp-admin.php"):
        assert client.get(path).status_code == 404
    count = value(
        scrape(client),
        "backoffice_http_request_duration_seconds_count",
        method="GET",
        route="unmatched",
        status="404",
    )
    assert count == 3


async def _finished_run(client: Any, deployment_id: Any, final: Any) -> Any:
    """A run of a deployment taken through Running to `final` (no worker needed)."""
    run = await client.create_flow_run_from_deployment(deployment_id)
    await client.set_flow_run_state(run.id, Running(), force=True)
    await client.set_flow_run_state(run.id, final, force=True)
    return run.id


@pytest.mark.prefect
@pytest.mark.xdist_group("deployments")
@pytest.mark.timeout(900)  # may be the test that starts the harness and deploys the catalog
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_job_metrics_equal_the_jobs_api(settings: Settings, engine: Engine, prefect_server: None) -> None:
    catalog = deployed_catalog()
    in_step(engine, catalog)
    # Other tests of the session leave runs behind (the misfire test's history, a browser "run
    # now"): this one starts from no runs at all, so every last run below is its own.
    delete_runs_of(catalog.ids)
    runs = [
        prefect(_finished_run, deployment("Controlling").id, Completed()),
        prefect(_finished_run, deployment("Print_Picking_morning").id, Failed()),
    ]
    try:
        with app_client(settings) as client:
            ops = auth(post(client, "/api/keys", {"name": "ops", "role": "operator"}, ADMIN)["key"])
            response = client.put(
                "/api/jobs/Print_Picking_noon/enabled", json={"enabled": False}, headers=ops
            )
            assert response.status_code == 200, response.text
            jobs = {j["id"]: j for j in client.get("/api/jobs", headers=ops).json()["items"]}
            before = datetime.now(UTC)
            samples = scrape(client)
            after = datetime.now(UTC)
    finally:
        in_step(engine, catalog)
        for run_id in runs:
            prefect(lambda c, r=run_id: c.delete_flow_run(r))

    assert value(samples, "backoffice_prefect_up") == 1
    assert sorted(
        dict(labels)["job_id"] for (name, labels) in samples if name == "backoffice_job_enabled"
    ) == sorted(catalog.ids)
    for job_id in catalog.ids:
        assert value(samples, "backoffice_job_enabled", job_id=job_id) == (job_id != "Print_Picking_noon")
        assert value(samples, "backoffice_job_running", job_id=job_id) == 0
    assert value(samples, "backoffice_job_last_run_success", job_id="Controlling") == 1
    assert value(samples, "backoffice_job_last_run_success", job_id="Print_Picking_morning") == 0
    for job_id in ("Controlling", "Print_Picking_morning"):
        duration = value(samples, "backoffice_job_last_run_duration_seconds", job_id=job_id)
        assert duration == jobs[job_id]["last_run"]["duration_seconds"] and duration >= 0
    assert ("backoffice_job_last_run_success", frozenset({("job_id", "Finish_Transport")})) not in samples
    for job_id, job in jobs.items():
        key = ("backoffice_job_seconds_until_next_run", frozenset({("job_id", job_id)}))
        if job["next_run_at"] is None:
            assert key not in samples, job_id
        else:
            next_run = datetime.fromisoformat(job["next_run_at"])
            assert (next_run - after).total_seconds() <= samples[key] <= (next_run - before).total_seconds()
    assert jobs["Print_Picking_noon"]["next_run_at"] is None  # disabled: its waiting runs are gone


def test_scrape_answers_when_prefect_is_down(settings: Settings) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    dead = f"http://127.0.0.1:{free_port()}/api"  # nobody listens there
    with temporary_settings(updates={PREFECT_API_URL: dead}), app_client(settings) as client:
        samples = scrape(client)
    assert value(samples, "backoffice_prefect_up") == 0
    assert value(samples, "backoffice_database_up") == 1
    assert not [name for name, _ in samples if name.startswith("backoffice_job_")]


def test_made_up_methods_share_one_method_label(client: TestClient) -> None:
    for method in ("FOO", "BAR", "PROPFIND"):
        assert client.request(method, "/healthz").status_code == 405
    samples = scrape(client)
    methods = {dict(labels).get("method") for _, labels in samples} - {None}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    count = "backoffice_http_request_duration_seconds_count"
    assert value(samples, count, method="other", route="/healthz", status="405") == 3


def test_scrapes_in_a_row_read_the_task_counts_once(client: TestClient) -> None:
    post(client, "/api/tasks", {"task_type": "EshopExport", "data": {}}, ADMIN)
    with statements_on(client.app.state.ctx.engine) as statements:  # type: ignore[attr-defined]
        first, second = scrape(client), scrape(client)
    # The per-type GROUP BY over the whole tasks table ran for the first scrape only.
    assert sum(bool(re.search(r"FROM tasks\b.*GROUP BY", s, re.S)) for s in statements) == 1
    for samples in (first, second):
        assert value(samples, "backoffice_tasks", task_type="EshopExport", status="pending") == 1
