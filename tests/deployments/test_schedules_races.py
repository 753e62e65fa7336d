"""The schedule reconciler never takes our own change for a Prefect UI edit, an operator's newer
override wins over an adoption, and a schedule change Prefect refuses leaves no override and no
event. Interleavings are made through `Interposer` (a real HTTP hop in front of the harness)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prefect.settings import PREFECT_API_URL

from backoffice.jobs.control import JobControl
from backoffice.jobs.schedule import Schedule
from backoffice.jobs.sync import observed_variable, reconcile
from backoffice.settings import Settings
from tests.deployments.conftest import deployment
from tests.deployments.test_reconciler_races import Interposer
from tests.helpers import ADMIN, app_client, assert_error, auth

pytestmark = [pytest.mark.prefect, pytest.mark.xdist_group("deployments")]

PRAGUE = "Europe/Prague"


@pytest.fixture
def hop(control: JobControl) -> Interposer:
    """An Interposer in front of the harness (Prefect first in step with the records)."""
    return Interposer(str(PREFECT_API_URL.value()))


def _crons(job_id: str) -> list[str]:
    return [s.schedule.cron for s in deployment(job_id).schedules]  # type: ignore[union-attr]


def _override(control: JobControl, job_id: str) -> tuple[Schedule, str] | None:
    found = control.schedules.get(job_id)
    return (found.schedule, found.changed_by) if found else None


def test_an_api_change_between_the_prefect_read_and_the_adoption_is_not_taken_for_an_edit(
    control: JobControl, hop: Interposer
) -> None:
    job = "Print_Picking_noon"
    # The pass has read the deployment; the operator's change lands before it acts on it.
    hop.after = lambda method, path, body: path.endswith("/deployments/filter") and job.encode() in body
    hop.step = lambda: control.set_schedule(job, "30 12 * * 1-5", None, "alice")

    with hop.serving():
        adopted = asyncio.run(reconcile(control.store, control.catalog))

    assert hop.stepped and adopted == []
    assert _override(control, job) == (Schedule("30 12 * * 1-5", PRAGUE), "alice")
    assert _crons(job) == ["30 12 * * 1-5"]
    assert asyncio.run(reconcile(control.store, control.catalog)) == []
    assert _crons(job) == ["30 12 * * 1-5"] and len(control.schedules.events(job)) == 1


def test_an_override_set_after_the_last_check_wins_over_a_ui_edit(
    control: JobControl, hop: Interposer
) -> None:
    job = "Import_Comgate_yesterday_EUR"
    d = deployment(job)
    edit = httpx.patch(
        f"{PREFECT_API_URL.value()}/deployments/{d.id}/schedules/{d.schedules[0].id}",
        json={"schedule": {"cron": "45 3 * * *", "timezone": PRAGUE}},
        timeout=30,
    )
    assert edit.status_code == 204, edit.text
    filtered = False

    def last_check(method: str, path: str, body: bytes) -> bool:
        nonlocal filtered
        if path.endswith("/deployments/filter") and job.encode() in body:
            filtered = True
            return False
        return filtered and method == "GET" and path.endswith("/variables/name/" + observed_variable(job))

    hop.after, hop.step = last_check, lambda: control.set_schedule(job, "5 5 * * *", None, "alice")
    with hop.serving():
        adopted = asyncio.run(reconcile(control.store, control.catalog))

    assert hop.stepped and adopted == []
    assert _override(control, job) == (Schedule("5 5 * * *", PRAGUE), "alice")
    assert asyncio.run(reconcile(control.store, control.catalog)) == []
    assert _crons(job) == ["5 5 * * *"]
    assert [e.actor for e in control.schedules.events(job)] == ["alice"]


def test_a_schedule_change_prefect_refuses_leaves_no_override(
    settings: Settings, control: JobControl, hop: Interposer
) -> None:
    job = "Controlling"
    hop.refuse = lambda method, path, _body: method == "PATCH" and "/schedules/" in path

    with hop.serving(), app_client(settings) as api:
        created = api.post("/api/keys", json={"name": "ops", "role": "operator"}, headers=ADMIN)
        operator = auth(created.json()["key"])
        response = api.put(f"/api/jobs/{job}/schedule", json={"cron": "15 2 * * *"}, headers=operator)

    assert_error(response, 503, "prefect_unavailable")
    assert control.schedules.get(job) is None and control.schedules.events(job) == []
    assert _crons(job) == ["0 1 * * *"]
    assert asyncio.run(reconcile(control.store, control.catalog)) == []
    assert _crons(job) == ["0 1 * * *"] and control.schedules.get(job) is None
