"""Deploying prefect.yaml: every catalog deployment, and a redeploy keeping a disabled job paused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import pytest
from fastapi.testclient import TestClient

from backoffice.jobs.catalog import PROJECT_DIR, Catalog
from backoffice.jobs.control import JobControl
from backoffice.jobs.prefect_api import Deployed, api_url
from backoffice.jobs.sync import reconcile
from tests.deployments.conftest import deploy_all, deployment

pytestmark = [pytest.mark.prefect, pytest.mark.xdist_group("deployments")]

CRONS = {
    "Import_Shoptet_yesterday_EUR": "10 0 * * *",
    "Import_Shoptet_yesterday_CZK": "20 0 * * *",
    "Import_Comgate_yesterday_CZK": "30 0 * * *",
    "Import_Comgate_yesterday_EUR": "40 0 * * *",
    "Controlling": "0 1 * * *",
    "Print_Picking_morning": "0 7 * * 1-5",
    "Print_Picking_noon": "0 12 * * 1-5",
    "Finish_Transport": "*/5 * * * *",
    "Queue_Retention": "0 2 * * *",
}


def test_deploy_creates_every_deployment(deployed_catalog: Catalog) -> None:
    assert deployed_catalog.ids == list(CRONS)
    for job_id, cron in CRONS.items():
        d = deployment(job_id)
        assert [(s.schedule.cron, s.schedule.timezone) for s in d.schedules] == [(cron, "Europe/Prague")]  # type: ignore[union-attr]
        assert d.work_pool_name == "backoffice"
        assert d.entrypoint == deployed_catalog.get(job_id).entrypoint
        assert d.parameters == deployed_catalog.get(job_id).parameters
        assert d.global_concurrency_limit is not None and d.global_concurrency_limit.limit == 1
        strategy = "CANCEL_NEW" if job_id in ("Finish_Transport", "Queue_Retention") else "ENQUEUE"
        assert d.concurrency_options is not None and d.concurrency_options.collision_strategy == strategy
        assert d.pull_steps == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(PROJECT_DIR)}}
        ]
        assert "PREFECT_FLOWS_DEFAULT_RETRIES" in d.job_variables["env"]
    assert (
        deployment("Import_Shoptet_yesterday_CZK").job_variables["env"]["PREFECT_FLOWS_DEFAULT_RETRIES"]
        == "2"
    )
    assert deployment("Finish_Transport").job_variables["env"]["PREFECT_FLOWS_DEFAULT_RETRIES"] == "0"


def _state(job_id: str) -> tuple[bool, list[bool]]:
    d = deployment(job_id)
    return bool(d.paused), [s.active for s in d.schedules]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # 3 deploys: once is enough
def test_a_redeploy_keeps_a_disabled_job_paused(
    control: JobControl, api: TestClient, operator: dict[str, str], use_settings: object
) -> None:
    job = "Print_Picking_noon"
    response = api.put(f"/api/jobs/{job}/enabled", json={"enabled": False}, headers=operator)
    assert response.status_code == 200, response.text
    assert _state(job) == (True, [False])

    # Plain Prefect: `prefect deploy --all` un-pauses (the yaml has no `paused:`) ...
    deploy_all()
    assert _state(job) == (False, [True])
    # ... and the reconciler (every 30 s in `backoffice run`) pauses it again: a redeploy is not
    # an operator's toggle, so the record wins and stays as the operator left it.
    assert asyncio.run(reconcile(control.store, control.catalog)) == []
    assert _state(job) == (True, [False])
    record = control.store.get(job)
    assert (record.enabled, record.changed_by) == (False, "ops")

    # An operator pauses another job in the Prefect UI while no reconciler runs (a restart) ...
    paused = httpx.patch(
        f"{api_url()}/deployments/{deployment('Finish_Transport').id}", json={"paused": True}
    )
    assert paused.status_code == 204, paused.text

    # ... and `backoffice deploy` takes that in first, then re-applies the records itself.
    env = {**os.environ, "PREFECT_API_URL": str(api_url())}
    done = subprocess.run(
        [sys.executable, "-m", "backoffice.cli", "deploy"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Deployed {len(control.catalog.jobs)} jobs" in done.stdout
    assert _state(job) == (True, [False])
    assert control.store.get(job).changed_by == "ops"
    assert _state("Finish_Transport") == (True, [False])
    finish = control.store.get("Finish_Transport")
    assert (finish.enabled, finish.changed_by) == (False, "prefect-ui")
    assert Deployed.of(deployment("Print_Picking_morning")).is_fully(True)  # the others stay enabled
