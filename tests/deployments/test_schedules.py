"""Cron overrides, as durable as Enabled: set through the sidecar, the CLI and the dashboard, kept
across `prefect deploy --all` and `backoffice deploy`, taken in from the Prefect UI and the prefect
CLI, reset; invalid ones refused; a disabled job keeps its own; `enabled_by_default: false`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prefect.states import Completed, Running, Scheduled
from sqlalchemy import Engine
from typer.testing import CliRunner

from backoffice.calendar import PRAGUE as PRAGUE_TZ
from backoffice.calendar import previous_business_day
from backoffice.cli import app as cli
from backoffice.jobs.catalog import PREFECT_YAML, Catalog, load_catalog
from backoffice.jobs.control import JobControl
from backoffice.jobs.deploy import after_deploy
from backoffice.jobs.prefect_api import Deployed, api_url, schedule_next_runs
from backoffice.jobs.schedule import Schedule
from backoffice.jobs.sync import Adopted, reconcile
from backoffice.settings import Settings
from tests.api.dashboard import csrf_of, signed_in
from tests.deployments.conftest import deploy_all, deployment, prefect, runs_of
from tests.helpers import ADMIN, ADMIN_KEY, assert_error

pytestmark = [pytest.mark.prefect, pytest.mark.xdist_group("deployments")]

PRAGUE = "Europe/Prague"
NOON, HALF_PAST = Schedule("0 12 * * 1-5", PRAGUE), Schedule("30 12 * * 1-5", PRAGUE)


def _schedules(job_id: str) -> list[tuple[str, str]]:
    """(cron, timezone) of each schedule of the job's deployment."""
    return [(s.schedule.cron, s.schedule.timezone) for s in deployment(job_id).schedules]  # type: ignore[union-attr]


def _waiting(job_id: str, auto_scheduled: bool) -> list[datetime]:
    """Expected start times of the job's waiting runs made by Prefect's scheduler (True) or by
    hand (False), oldest first."""
    return [
        r.expected_start_time
        for r in runs_of(job_id)
        if r.auto_scheduled is auto_scheduled
        and r.state_type
        and r.state_type.value == "SCHEDULED"
        and r.expected_start_time
    ]


def _made_by_scheduler(job_id: str) -> list[datetime]:
    """Expected start times of the waiting runs Prefect's scheduler made, oldest first."""
    return _waiting(job_id, True)


def _slots(schedule: Schedule, times: list[datetime]) -> bool:
    """True when every time is a slot of `schedule`."""
    if not times:
        return True
    return set(times) <= set(asyncio.run(schedule.slots(min(times), max(times))))


def _next(schedule: Schedule, after: datetime) -> datetime:
    (slot,) = asyncio.run(schedule.prefect().get_dates(n=1, start=after))
    return datetime.fromtimestamp(slot.timestamp(), UTC)


def _next_run(job_id: str, schedule: Schedule, after: datetime) -> datetime:
    """The run the API must name next: the schedule's next slot after `after`, unless a run made by
    hand (another test's `jobs run` or catch-up, never picked up without a worker) waits from before."""
    return min([_next(schedule, after), *_waiting(job_id, False)])


def _refill(job_id: str) -> None:
    """Let Prefect create the upcoming runs now (its scheduler would within a minute)."""
    prefect(schedule_next_runs, deployment(job_id).id)


def _events(api: TestClient, headers: dict[str, str], job_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/api/jobs/{job_id}/events", headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_a_new_cron_moves_the_next_run_at_once(
    api: TestClient, operator: dict[str, str], control: JobControl
) -> None:
    job = "Print_Picking_noon"
    _refill(job)
    before_ids = [s.id for s in deployment(job).schedules]
    assert _made_by_scheduler(job) and _slots(NOON, _made_by_scheduler(job))  # runs at 12:00 wait
    # A run made by hand for a time that is no slot of either cron (far out: not the next run).
    odd, deployment_id = datetime.now(UTC) + timedelta(days=200, minutes=7), deployment(job).id
    by_hand = prefect(
        lambda c: c.create_flow_run_from_deployment(deployment_id, state=Scheduled(scheduled_time=odd))
    ).id

    before = datetime.now(UTC)
    response = api.put(f"/api/jobs/{job}/schedule", json={"cron": "30 12 * * 1-5"}, headers=operator)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["cron"], body["timezone"], body["schedule_source"], body["schedule_changed_by"]) == (
        "30 12 * * 1-5",
        PRAGUE,  # the zone in force when none is sent
        "override",
        "ops",
    )
    assert datetime.fromisoformat(body["schedule_changed_at"]) >= before
    assert (body["catalog_cron"], body["catalog_timezone"]) == ("0 12 * * 1-5", PRAGUE)
    assert datetime.fromisoformat(body["next_run_at"]) == _next_run(job, HALF_PAST, before)

    # Prefect runs the new cron under the same schedule; nothing waits under the old one.
    assert _schedules(job) == [("30 12 * * 1-5", PRAGUE)]
    assert [s.id for s in deployment(job).schedules] == before_ids
    made = _made_by_scheduler(job)
    assert made and _slots(HALF_PAST, made) and not _slots(NOON, made[:1])
    assert made[0] == _next(HALF_PAST, before)
    assert by_hand in {r.id for r in runs_of(job)}  # a run made by hand stays

    listed = {j["id"]: j for j in api.get("/api/jobs", headers=operator).json()["items"]}
    assert listed[job]["schedule_source"] == "override"
    assert {j["schedule_source"] for i, j in listed.items() if i != job} == {"catalog"}
    assert asyncio.run(reconcile(control.store, control.catalog)) == []  # our own change: nothing to adopt

    other_zone = api.put(
        f"/api/jobs/{job}/schedule", json={"cron": "30 12 * * 1-5", "timezone": "UTC"}, headers=operator
    )
    assert other_zone.status_code == 200 and other_zone.json()["timezone"] == "UTC"
    assert _schedules(job) == [("30 12 * * 1-5", "UTC")]
    (latest, first) = _events(api, operator, job)
    assert (first["event"], first["actor"], first["details"]) == (
        "schedule_set",
        "ops",
        {
            "old": {"cron": "0 12 * * 1-5", "timezone": PRAGUE, "source": "catalog"},
            "new": {"cron": "30 12 * * 1-5", "timezone": PRAGUE, "source": "override"},
        },
    )
    assert latest["details"]["new"]["timezone"] == "UTC"


def test_reset_goes_back_to_the_catalog(api: TestClient, operator: dict[str, str]) -> None:
    job = "Print_Picking_morning"
    assert (
        api.put(f"/api/jobs/{job}/schedule", json={"cron": "15 6 * * *"}, headers=operator).status_code == 200
    )
    assert _schedules(job) == [("15 6 * * *", PRAGUE)]

    before = datetime.now(UTC)
    response = api.delete(f"/api/jobs/{job}/schedule", headers=operator)
    assert response.status_code == 200, response.text
    body = response.json()
    morning = Schedule("0 7 * * 1-5", PRAGUE)
    assert (body["cron"], body["schedule_source"], body["schedule_changed_by"]) == (
        "0 7 * * 1-5",
        "catalog",
        None,
    )
    assert datetime.fromisoformat(body["next_run_at"]) == _next_run(job, morning, before)
    assert _schedules(job) == [("0 7 * * 1-5", PRAGUE)]
    assert _slots(morning, _made_by_scheduler(job))

    assert api.delete(f"/api/jobs/{job}/schedule", headers=operator).status_code == 200  # nothing to reset
    assert [(e["event"], e["details"]["new"]["source"]) for e in _events(api, operator, job)] == [
        ("schedule_reset", "catalog"),
        ("schedule_set", "override"),
    ]


def test_an_invalid_schedule_is_422_and_changes_nothing(
    api: TestClient, operator: dict[str, str], control: JobControl
) -> None:
    job = "Controlling"
    consumer = api.post(
        "/api/keys", json={"name": "shop", "role": "consumer", "task_types": ["EshopExport"]}, headers=ADMIN
    ).json()["key"]
    cases: list[tuple[str, str, Any, dict[str, str], int, str, str]] = [
        ("put", job, {"cron": "61 * * * *"}, operator, 422, "invalid_schedule", "minute field '61'"),
        ("put", job, {"cron": "0 12 * *"}, operator, 422, "invalid_schedule", "write five"),
        ("put", job, {"cron": "0 0 30 2 *"}, operator, 422, "invalid_schedule", "never fires"),
        (
            "put",
            job,
            {"cron": "0 1 * * *", "timezone": "Europe/Atlantis"},
            operator,
            422,
            "invalid_schedule",
            "unknown",
        ),
        ("put", job, {"cron": 5}, operator, 422, "validation_error", ""),
        ("put", job, {}, operator, 422, "validation_error", ""),
        ("put", job, {"cron": "0 1 * * *", "when": "now"}, operator, 422, "validation_error", ""),
        ("put", job, {"cron": "0 1 * * *\u0000"}, operator, 422, "validation_error", "NUL"),
        ("put", "Nope", {"cron": "0 1 * * *"}, operator, 404, "not_found", "no job 'Nope'"),
        ("delete", "Nope", None, operator, 404, "not_found", ""),
        ("get", "Nope", None, operator, 404, "not_found", ""),
        ("put", job, {"cron": "0 1 * * *"}, {"x-functions-key": consumer}, 403, "forbidden", ""),
        ("delete", job, None, {"x-functions-key": consumer}, 403, "forbidden", ""),
    ]
    for method, job_id, body, headers, status, code, says in cases:
        path = f"/api/jobs/{job_id}/events" if method == "get" else f"/api/jobs/{job_id}/schedule"
        answer = assert_error(api.request(method, path, json=body, headers=headers), status, code)
        assert says in answer["message"], answer
    assert control.schedules.get(job) is None and control.schedules.events(job) == []
    assert _schedules(job) == [("0 1 * * *", PRAGUE)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # 3 deploys: once is enough
def test_overrides_survive_prefect_deploy_and_backoffice_deploy_and_a_disabled_job_keeps_its_own(
    api: TestClient, operator: dict[str, str], control: JobControl, use_settings: object
) -> None:
    job, off = "Controlling", "Import_Shoptet_yesterday_CZK"
    override, off_cron = Schedule("15 2 * * *", PRAGUE), Schedule("50 23 * * *", PRAGUE)
    assert (
        api.put(f"/api/jobs/{job}/schedule", json={"cron": override.cron}, headers=operator).status_code
        == 200
    )
    # A disabled job takes a new cron and stays disabled: paused, nothing waiting.
    assert api.put(f"/api/jobs/{off}/enabled", json={"enabled": False}, headers=operator).status_code == 200
    response = api.put(f"/api/jobs/{off}/schedule", json={"cron": off_cron.cron}, headers=operator)
    assert response.status_code == 200, response.text
    assert (response.json()["enabled"], response.json()["next_run_at"]) == (False, None)
    assert _schedules(off) == [(off_cron.cron, PRAGUE)]
    assert Deployed.of(deployment(off)).is_fully(False) and _made_by_scheduler(off) == []

    # Plain Prefect puts prefect.yaml's cron back (under a new schedule id) ...
    deploy_all()
    assert _schedules(job) == [("0 1 * * *", PRAGUE)] and _schedules(off) == [("20 0 * * *", PRAGUE)]
    _refill(job)  # what its scheduler does: runs at 01:00 wait
    # ... and the reconciler puts the overrides back: a redeploy is not an operator's edit.
    assert asyncio.run(reconcile(control.store, control.catalog)) == []
    assert _schedules(job) == [(override.cron, PRAGUE)] and _schedules(off) == [(off_cron.cron, PRAGUE)]
    assert _made_by_scheduler(job) and _slots(override, _made_by_scheduler(job))
    assert Deployed.of(deployment(off)).is_fully(False) and _made_by_scheduler(off) == []

    # `backoffice deploy` re-applies them itself.
    env = {**os.environ, "PREFECT_API_URL": str(api_url())}
    done = subprocess.run(
        [sys.executable, "-m", "backoffice.cli", "deploy"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert _schedules(job) == [(override.cron, PRAGUE)] and _schedules(off) == [(off_cron.cron, PRAGUE)]
    assert _slots(override, _made_by_scheduler(job))
    kept = control.schedules.get(job)
    assert kept is not None and (kept.schedule, kept.changed_by) == (override, "ops")
    assert len(control.schedules.events(job)) == 1  # re-applying is no change

    # Enabling the disabled job resumes it under its override.
    before = datetime.now(UTC)
    enabled = api.put(f"/api/jobs/{off}/enabled", json={"enabled": True}, headers=operator)
    assert enabled.status_code == 200, enabled.text
    assert (enabled.json()["cron"], enabled.json()["schedule_source"]) == (off_cron.cron, "override")
    assert datetime.fromisoformat(enabled.json()["next_run_at"]) == _next_run(off, off_cron, before)
    assert _made_by_scheduler(off) and _slots(off_cron, _made_by_scheduler(off))


def _patch_schedule(job_id: str, cron: str) -> None:
    """What the Prefect UI's schedule edit sends (retried on 503: the harness's SQLite may be busy)."""
    d = deployment(job_id)
    url = f"{api_url()}/deployments/{d.id}/schedules/{d.schedules[0].id}"
    for _ in range(10):
        response = httpx.patch(url, json={"schedule": {"cron": cron, "timezone": PRAGUE}}, timeout=30)
        if response.status_code != 503:
            break
        time.sleep(0.5)
    assert response.status_code == 204, response.text


def _prefect_cli(*args: str) -> None:
    env = {**os.environ, "PREFECT_API_URL": str(api_url())}
    done = subprocess.run(
        [sys.executable, "-m", "prefect", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_schedule_edited_in_prefect_is_adopted(
    api: TestClient, operator: dict[str, str], control: JobControl
) -> None:
    job = "Import_Comgate_yesterday_EUR"
    _patch_schedule(job, "45 3 * * *")
    edited = Schedule("45 3 * * *", PRAGUE)
    assert asyncio.run(reconcile(control.store, control.catalog)) == [Adopted(job, True, edited)]
    adopted = control.schedules.get(job)
    assert adopted is not None and (adopted.schedule, adopted.changed_by) == (edited, "prefect-ui")
    assert asyncio.run(reconcile(control.store, control.catalog)) == []  # in step now
    assert _schedules(job) == [("45 3 * * *", PRAGUE)] and _slots(edited, _made_by_scheduler(job))
    body = api.get(f"/api/jobs/{job}", headers=operator).json()
    assert (body["cron"], body["schedule_source"], body["schedule_changed_by"]) == (
        "45 3 * * *",
        "override",
        "prefect-ui",
    )

    # `prefect deployment schedule create --replace` (a new schedule id, a cron of its own) too.
    _prefect_cli(
        "deployment", "schedule", "create", f"import-comgate-payments/{job}", "--cron", "5 4 * * *",
        "--timezone", PRAGUE, "--replace", "--accept-yes",
    )  # fmt: skip
    replaced = Schedule("5 4 * * *", PRAGUE)
    assert asyncio.run(reconcile(control.store, control.catalog)) == [Adopted(job, True, replaced)]
    assert control.schedules.get(job).schedule == replaced  # type: ignore[union-attr]

    # Edited back to prefect.yaml's cron in the UI: that is a reset.
    _patch_schedule(job, "40 0 * * *")
    assert asyncio.run(reconcile(control.store, control.catalog)) == [
        Adopted(job, True, Schedule("40 0 * * *", PRAGUE))
    ]
    assert control.schedules.get(job) is None
    assert api.get(f"/api/jobs/{job}", headers=operator).json()["schedule_source"] == "catalog"
    assert [(e["event"], e["actor"]) for e in _events(api, operator, job)] == [
        ("schedule_reset", "prefect-ui"),
        ("schedule_set", "prefect-ui"),
        ("schedule_set", "prefect-ui"),
    ]


def test_backoffice_jobs_schedule_cli(control: JobControl, use_settings: object) -> None:
    runner = CliRunner()
    job = "Finish_Transport"
    done = runner.invoke(cli, ["jobs", "schedule", job, "*/10 * * * *", "--timezone", "UTC"])
    assert done.exit_code == 0, done.output
    assert "runs on */10 * * * * (UTC, override)" in done.output
    assert _schedules(job) == [("*/10 * * * *", "UTC")]
    override = control.schedules.get(job)
    assert override is not None and override.changed_by.startswith("cli:")

    listed = runner.invoke(cli, ["jobs", "list"])
    assert listed.exit_code == 0, listed.output
    marked = [line.split()[0] for line in listed.output.splitlines() if "[override]" in line]
    assert marked == [job]

    bad = runner.invoke(cli, ["jobs", "schedule", job, "*/10 * * *"])
    assert bad.exit_code == 1 and "write five" in bad.output
    neither = runner.invoke(cli, ["jobs", "schedule", job])
    assert neither.exit_code == 2 and "--reset" in neither.output

    reset = runner.invoke(cli, ["jobs", "schedule", job, "--reset"])
    assert reset.exit_code == 0, reset.output
    assert "prefect.yaml's" in reset.output and _schedules(job) == [("*/5 * * * *", PRAGUE)]
    assert control.schedules.get(job) is None


def test_the_dashboard_edits_and_resets_the_cron(api: TestClient, control: JobControl) -> None:
    job = "Print_Picking_noon"
    token = signed_in(api, ADMIN_KEY)
    page = api.get("/")
    assert f'action="/jobs/{job}/schedule"' in page.text and "At 12:00, Monday through Friday" in page.text

    refused = api.post(f"/jobs/{job}/schedule", data={"cron": "30 12 * * 1-5", "timezone": PRAGUE})
    assert refused.status_code == 403 and control.schedules.get(job) is None  # no CSRF token

    saved = api.post(
        f"/jobs/{job}/schedule",
        data={"cron": "30 12 * * 1-5", "timezone": PRAGUE, "csrf_token": token},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    shown = api.get(saved.headers["location"]).text
    assert "At 12:30, Monday through Friday" in shown and f'action="/jobs/{job}/schedule/reset"' in shown
    assert _schedules(job) == [("30 12 * * 1-5", PRAGUE)]

    invalid = api.post(
        f"/jobs/{job}/schedule", data={"cron": "30 25 * * *", "timezone": PRAGUE, "csrf_token": token}
    )
    assert invalid.status_code == 422 and "hour field" in invalid.text

    history = api.get(f"/jobs/{job}")
    assert history.status_code == 200
    assert (
        "schedule_set" in history.text and "0 12 * * 1-5" in history.text and "30 12 * * 1-5" in history.text
    )

    reset = api.post(
        f"/jobs/{job}/schedule/reset", data={"csrf_token": csrf_of(history.text)}, follow_redirects=False
    )
    assert reset.status_code == 303 and control.schedules.get(job) is None
    assert _schedules(job) == [("0 12 * * 1-5", PRAGUE)]


def test_enabled_by_default_false_starts_a_job_paused_on_a_fresh_database(
    engine: Engine, deployed_catalog: Catalog, api: TestClient, operator: dict[str, str], tmp_path: Path
) -> None:
    job = "Controlling"
    items = api.get("/api/jobs", headers=operator).json()["items"]
    assert {i["enabled_source"] for i in items} == {"default"} and all(i["enabled"] for i in items)

    # The same catalog with Controlling declared `enabled_by_default: false`.
    text = PREFECT_YAML.read_text(encoding="utf-8")
    declared = "  - name: Controlling\n    <<: *report\n"
    assert declared in text
    off_by_default = "    backoffice: {misfire: each_missed_slot, catch_up_limit: 14, timeout_seconds: 900, enabled_by_default: false}\n"  # noqa: E501
    path = tmp_path / "prefect.yaml"
    path.write_text(text.replace(declared, declared + off_by_default), encoding="utf-8")
    catalog = load_catalog(path)
    assert catalog.get(job).enabled_by_default is False
    control = JobControl(engine, catalog_loader=lambda: catalog)

    assert asyncio.run(reconcile(control.store, catalog)) == []
    assert Deployed.of(deployment(job)).is_fully(False) and _made_by_scheduler(job) == []
    status = asyncio.run(control.status(job))
    assert (status.enabled, status.enabled_source, status.health, status.changed_by) == (
        False,
        "default",
        "disabled",
        None,
    )
    assert asyncio.run(control.status("Finish_Transport")).enabled is True  # the others as before

    enabled = asyncio.run(control.set_enabled(job, True, "ops"))
    assert (enabled.enabled, enabled.enabled_source, enabled.changed_by) == (True, "record", "ops")
    assert Deployed.of(deployment(job)).is_fully(True)
    assert asyncio.run(reconcile(control.store, catalog)) == []  # the record now decides


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # Prefect-side logic
def test_the_catch_up_uses_the_schedule_in_force(
    control: JobControl, engine: Engine, settings: Settings
) -> None:
    job = "Import_Comgate_yesterday_CZK"
    override = Schedule("0 5 * * *", PRAGUE)
    control.schedules.set(job, override, "ops", control.catalog.get(job).schedule)
    for run in runs_of(job):
        prefect(lambda c, run_id=run.id: c.delete_flow_run(run_id))
    now = datetime.now(UTC)
    last = asyncio.run(override.slots(now - timedelta(days=4), now - timedelta(days=3)))[0]
    did = deployment(job).id

    async def ran(client: Any) -> None:
        run = await client.create_flow_run_from_deployment(did, state=Scheduled(scheduled_time=last))
        await client.set_flow_run_state(run.id, Running(), force=True)
        await client.set_flow_run_state(run.id, Completed(), force=True)

    prefect(ran)
    report = asyncio.run(after_deploy(engine, settings, control.catalog, now))
    (caught,) = [c for c in report.catch_up if c.job_id == job]
    missed = asyncio.run(override.slots(last + timedelta(seconds=1), now))
    assert list(caught.created) == missed and len(missed) in (3, 4)  # each missed 05:00, not 00:30
    # Each run works on the business day of its own slot under the schedule in force.
    days = [previous_business_day(slot) for slot in caught.created]
    assert days == [slot.astimezone(PRAGUE_TZ).date() - timedelta(days=1) for slot in missed]
    assert len(set(days)) == len(days)
    assert _schedules(job) == [(override.cron, PRAGUE)]
