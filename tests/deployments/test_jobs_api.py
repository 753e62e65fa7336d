"""/api/jobs over HTTP: listing, run now, and the errors (404, 403, 422, 503 — never a 500)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prefect.server.schemas.schedules import CronSchedule

from backoffice.jobs.control import JobControl
from backoffice.settings import Settings
from tests.deployments.conftest import delete_runs_of, prefect
from tests.helpers import ADMIN
from tests.servers import free_port
from tests.sidecar import Sidecar

pytestmark = [pytest.mark.prefect, pytest.mark.xdist_group("deployments")]


def test_list_shows_every_job_in_catalog_order(api: TestClient, operator: dict[str, str]) -> None:
    assert api.get("/api/jobs").status_code == 401
    response = api.get("/api/jobs", headers=operator)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["id"] for i in items] == [
        "Import_Shoptet_yesterday_EUR",
        "Import_Shoptet_yesterday_CZK",
        "Import_Comgate_yesterday_CZK",
        "Import_Comgate_yesterday_EUR",
        "Controlling",
        "Print_Picking_morning",
        "Print_Picking_noon",
        "Finish_Transport",
        "Queue_Retention",
    ]
    first = items[0]
    assert (first["flow"], first["cron"], first["timezone"]) == (
        "import-shoptet-invoices",
        "10 0 * * *",
        "Europe/Prague",
    )
    assert first["parameters"] == {"currency": "EUR"} and first["enabled"] is True
    assert {i["health"] for i in items} <= {"ok", "late", "failed", "disabled"}
    assert set(first) >= {"next_run_at", "last_run", "running_now", "deployment_id", "changed_by"}
    assert (first["enabled_source"], first["schedule_source"], first["catalog_cron"]) == (
        "default",  # a fresh database: prefect.yaml's enabled_by_default decides
        "catalog",
        "10 0 * * *",
    )


def test_run_now_passes_the_day_and_returns_the_flow_run(api: TestClient, operator: dict[str, str]) -> None:
    response = api.post("/api/jobs/Controlling/run", json={"day": "2026-11-01"}, headers=operator)
    assert response.status_code == 201, response.text
    body = response.json()
    run = prefect(lambda c: c.read_flow_run(body["flow_run_id"]))
    assert run.parameters == {"day": "2026-11-01"} and "manual" in run.tags
    assert body["parameters"] == {"day": "2026-11-01"} and body["enabled"] is True


def test_errors_are_4xx_with_a_code(api: TestClient, operator: dict[str, str]) -> None:
    consumer = api.post(
        "/api/keys", json={"name": "shop", "role": "consumer", "task_types": ["EshopExport"]}, headers=ADMIN
    ).json()["key"]
    cases = [
        ("put", "/api/jobs/Nope/enabled", {"enabled": False}, operator, 404, "not_found"),
        ("get", "/api/jobs/Nope", None, operator, 404, "not_found"),
        ("post", "/api/jobs/Nope/run", {}, operator, 404, "not_found"),
        (
            "put",
            "/api/jobs/Controlling/enabled",
            {"enabled": False},
            {"x-functions-key": consumer},
            403,
            "forbidden",
        ),
        ("post", "/api/jobs/Controlling/run", {}, {"x-functions-key": consumer}, 403, "forbidden"),
        ("put", "/api/jobs/Controlling/enabled", {"enabled": "yes"}, operator, 422, "validation_error"),
        ("put", "/api/jobs/Controlling/enabled", {}, operator, 422, "validation_error"),
        ("post", "/api/jobs/Finish_Transport/run", {"day": "2026-11-01"}, operator, 422, "validation_error"),
        (
            "post",
            "/api/jobs/Controlling/run",
            {"parameters": {"colour": "red"}},
            operator,
            422,
            "validation_error",
        ),
        ("post", "/api/jobs/Controlling/run", {"day": "yesterday"}, operator, 422, "validation_error"),
        (
            "post",
            "/api/jobs/Controlling/run",
            {"day": "2026-11-01", "x": 1},
            operator,
            422,
            "validation_error",
        ),
    ]
    for method, url, body, headers, status, code in cases:
        response = api.request(method, url, json=body, headers=headers)
        assert (response.status_code, response.json()["error"]) == (status, code), (
            method,
            url,
            response.text,
        )
        assert response.json()["message"]


def test_prefect_unreachable_is_503_and_changes_nothing(
    settings: Settings, control: JobControl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")  # nobody listens there
    with Sidecar(settings, log_path=tmp_path / "sidecar.log") as sidecar:
        for method, path, body in [
            ("GET", "/api/jobs", None),
            ("PUT", "/api/jobs/Controlling/enabled", {"enabled": False}),
            ("POST", "/api/jobs/Controlling/run", {}),
        ]:
            response = httpx.request(method, f"{sidecar.url}{path}", json=body, headers=ADMIN, timeout=60)
            assert response.status_code == 503, response.text
            assert response.json()["error"] == "prefect_unavailable"
            assert "PREFECT_API_URL" in response.json()["message"] and response.headers["Retry-After"]
        unknown = httpx.get(f"{sidecar.url}/api/jobs/Nope", headers=ADMIN, timeout=60)
        assert unknown.status_code == 404
    assert control.store.get("Controlling").changed_by is None  # nothing was recorded


def test_next_run_comes_from_the_cron_while_prefect_has_none_scheduled(
    api: TestClient, operator: dict[str, str]
) -> None:
    """An enabled job never shows an empty next run: without a scheduled run, the cron tells."""
    job = "Print_Picking_noon"
    delete_runs_of([job])
    before = datetime.now(UTC)
    body = api.get(f"/api/jobs/{job}", headers=operator).json()
    (expected,) = asyncio.run(
        CronSchedule(cron="0 12 * * 1-5", timezone="Europe/Prague").get_dates(n=1, start=before)
    )
    # The harness's scheduler may have created the run again meanwhile: the same slot either way.
    assert body["enabled"] is True
    assert datetime.fromisoformat(body["next_run_at"]) == expected
