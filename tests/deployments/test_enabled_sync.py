"""Enabled = not paused, through every path: the sidecar, the CLI, the Prefect UI and the prefect CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prefect.server.schemas.schedules import CronSchedule
from prefect.states import Scheduled
from typer.testing import CliRunner

from backoffice.cli import app as cli
from backoffice.jobs.control import JobControl
from backoffice.jobs.prefect_api import api_url
from backoffice.jobs.sync import Adopted, reconcile, reconcile_forever
from tests.deployments.conftest import deployment, prefect, runs_of

pytestmark = [pytest.mark.prefect, pytest.mark.xdist_group("deployments")]


def _state(job_id: str) -> tuple[bool, list[bool]]:
    d = deployment(job_id)
    return bool(d.paused), [s.active for s in d.schedules]


def _waiting(job_id: str) -> list[Any]:
    return [r for r in runs_of(job_id) if r.state_type is not None and r.state_type.value == "SCHEDULED"]


def _job(api: TestClient, operator: dict[str, str], job_id: str) -> dict[str, Any]:
    response = api.get(f"/api/jobs/{job_id}", headers=operator)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_disabling_pauses_and_deletes_waiting_runs(
    api: TestClient, operator: dict[str, str], control: JobControl
) -> None:
    job = "Controlling"
    assert api.put(f"/api/jobs/{job}/enabled", json={"enabled": True}, headers=operator).status_code == 200
    assert _waiting(job), "enabling creates the upcoming runs"
    late, deployment_id = datetime.now(UTC) - timedelta(hours=3), deployment(job).id
    prefect(lambda c: c.create_flow_run_from_deployment(deployment_id, state=Scheduled(scheduled_time=late)))
    assert len(_waiting(job)) >= 2

    response = api.put(f"/api/jobs/{job}/enabled", json={"enabled": False}, headers=operator)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["enabled"], body["health"], body["changed_by"], body["next_run_at"]) == (
        False,
        "disabled",
        "ops",
        None,
    )
    assert _state(job) == (True, [False])
    assert _waiting(job) == []  # future, late and hand-made runs alike

    # A run asked for afterwards is the operator's: the reconciler leaves it to the worker.
    forced = api.post(f"/api/jobs/{job}/run", json={"force": True}, headers=operator)
    assert forced.status_code == 201, forced.text
    assert asyncio.run(reconcile(control.store, control.catalog)) == []
    assert [str(r.id) for r in runs_of(job) if r.state_type and r.state_type.value == "SCHEDULED"] == [
        forced.json()["flow_run_id"]
    ]


def test_enabling_resumes_and_the_next_run_appears(api: TestClient, operator: dict[str, str]) -> None:
    job = "Import_Comgate_yesterday_EUR"
    assert api.put(f"/api/jobs/{job}/enabled", json={"enabled": False}, headers=operator).status_code == 200
    assert _state(job) == (True, [False])

    before = datetime.now(UTC)
    response = api.put(f"/api/jobs/{job}/enabled", json={"enabled": True}, headers=operator)
    assert response.status_code == 200, response.text
    assert _state(job) == (False, [True])
    (expected,) = asyncio.run(
        CronSchedule(cron="40 0 * * *", timezone="Europe/Prague").get_dates(n=1, start=before)
    )
    assert datetime.fromisoformat(response.json()["next_run_at"]) == expected
    assert _job(api, operator, job)["health"] == "ok"


def _patch_paused(job_id: str, paused: bool) -> None:
    """What the Prefect UI's pause toggle sends (retried on 503: the harness's SQLite may be busy)."""
    url = f"{api_url()}/deployments/{deployment(job_id).id}"
    for _ in range(10):
        response = httpx.patch(url, json={"paused": paused}, timeout=30)
        if response.status_code != 503:
            break
        time.sleep(0.5)
    assert response.status_code == 204, response.text


def test_the_prefect_ui_toggle_is_picked_up_by_the_reconciler_loop(control: JobControl) -> None:
    job = "Import_Shoptet_yesterday_EUR"

    async def scenario() -> list[tuple[bool, str | None, tuple[bool, list[bool]]]]:
        seen: list[tuple[bool, str | None, tuple[bool, list[bool]]]] = []
        passes = 0
        pass_done = asyncio.Condition()

        async def count_pass(_catalog: object, _now: object) -> None:
            nonlocal passes
            async with pass_done:
                passes += 1
                pass_done.notify_all()

        async def two_more_passes() -> None:
            async with pass_done:
                target = passes + 2
                await pass_done.wait_for(lambda: passes >= target)

        loop = asyncio.create_task(
            reconcile_forever(control.store, lambda: control.catalog, interval=0.2, also=count_pass)
        )
        try:
            for paused in (True, False):
                await asyncio.to_thread(_patch_paused, job, paused)
                # The pass under way may have read Prefect before the toggle; the one after it
                # started afterwards and has finished adopting it. Gate on passes, not on time.
                await asyncio.wait_for(two_more_passes(), timeout=240)
                record = control.store.get(job)
                seen.append((record.enabled, record.changed_by, await asyncio.to_thread(_state, job)))
        finally:
            loop.cancel()
        return seen

    assert asyncio.run(scenario()) == [
        (False, "prefect-ui", (True, [False])),
        (True, "prefect-ui", (False, [True])),
    ]


def _prefect_cli(*args: str) -> None:
    env = {**os.environ, "PREFECT_API_URL": str(api_url())}
    done = subprocess.run(
        [sys.executable, "-m", "prefect", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_prefect_cli_schedule_pause_and_resume_are_picked_up(control: JobControl) -> None:
    job = "Import_Comgate_yesterday_CZK"
    name = f"import-comgate-payments/{job}"
    schedule_id = str(deployment(job).schedules[0].id)

    _prefect_cli("deployment", "schedule", "pause", name, schedule_id)
    assert asyncio.run(reconcile(control.store, control.catalog)) == [Adopted(job, False)]
    assert (control.store.get(job).enabled, control.store.get(job).changed_by) == (False, "prefect-ui")
    assert _state(job) == (True, [False])  # made fully disabled: paused too

    _prefect_cli("deployment", "schedule", "resume", name, schedule_id)
    assert asyncio.run(reconcile(control.store, control.catalog)) == [Adopted(job, True)]
    assert control.store.get(job).enabled is True
    assert _state(job) == (False, [True])
    assert asyncio.run(reconcile(control.store, control.catalog)) == []  # in step: nothing to adopt


def test_backoffice_jobs_cli(control: JobControl, use_settings: object) -> None:
    runner = CliRunner()
    job = "Print_Picking_morning"
    done = runner.invoke(cli, ["jobs", "disable", job])
    assert done.exit_code == 0, done.output
    assert _state(job) == (True, [False])
    assert control.store.get(job).changed_by.startswith("cli:")  # type: ignore[union-attr]

    listed = runner.invoke(cli, ["jobs", "list"])
    assert listed.exit_code == 0, listed.output
    (line,) = [line for line in listed.output.splitlines() if line.startswith(job)]
    assert line.split()[1:3] == ["no", "disabled"]
    assert len(listed.output.splitlines()) == 1 + len(control.catalog.ids)  # header + every job

    started = runner.invoke(cli, ["jobs", "run", job])
    assert started.exit_code == 0, started.output
    assert "ends as Skipped" in started.output
    assert runner.invoke(cli, ["jobs", "enable", job]).exit_code == 0
    assert _state(job) == (False, [True])
    unknown = runner.invoke(cli, ["jobs", "enable", "Nope"])
    assert unknown.exit_code == 1 and "There is no job 'Nope'" in unknown.output
