"""After downtime: one run per missed day for the imports, one run for Finish_Transport, no flood."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID

import pytest
from prefect.server.schemas.schedules import CronSchedule
from prefect.states import Completed, Running, Scheduled

from backoffice.calendar import PRAGUE, previous_business_day
from backoffice.jobs.control import JobControl
from backoffice.jobs.misfire import catch_up
from tests.deployments.conftest import delete_runs_of, deployment, prefect, runs_of

pytestmark = [pytest.mark.prefect, pytest.mark.xdist_group("deployments")]

IMPORT, TRANSPORT = "Import_Comgate_yesterday_CZK", "Finish_Transport"


async def _ran_at(client: Any, deployment_id: UUID, slot: datetime) -> None:
    """A run of `slot` that ran and completed (the history before the outage)."""
    run = await client.create_flow_run_from_deployment(deployment_id, state=Scheduled(scheduled_time=slot))
    await client.set_flow_run_state(run.id, Running(), force=True)
    await client.set_flow_run_state(run.id, Completed(), force=True)


async def _prescheduled(client: Any, deployment_id: UUID, start: datetime, end: datetime) -> None:
    """Runs the scheduler had created ahead, before the system went down (now late)."""
    response = await client.request(
        "POST",
        "/deployments/{id}/schedule",
        path_params={"id": deployment_id},
        json={
            "start_time": start.isoformat(),
            "end_time": end.isoformat(),
            "min_runs": 1000,
            "max_runs": 1000,
        },
    )
    response.raise_for_status()


def _waiting(job_id: str) -> list[datetime]:
    runs = runs_of(job_id)
    return [
        r.expected_start_time
        for r in runs
        if r.state_type is not None and r.state_type.value == "SCHEDULED" and r.expected_start_time
    ]


def _slots(cron: str, after: datetime, until: datetime) -> list[datetime]:
    return asyncio.run(CronSchedule(cron=cron, timezone="Europe/Prague").get_dates(start=after, end=until))


@pytest.mark.parametrize(
    "database_url", ["sqlite"], indirect=True
)  # Prefect-side logic; records: both DBs elsewhere
def test_simulated_downtime(control: JobControl) -> None:
    delete_runs_of([IMPORT, TRANSPORT])
    now = datetime.now(UTC)
    today = now.astimezone(PRAGUE).date()
    last_import = datetime.combine(today - timedelta(days=5), time(0, 30), PRAGUE)
    last_transport = (now - timedelta(days=4)).replace(minute=0, second=0, microsecond=0)
    imp, transport = deployment(IMPORT).id, deployment(TRANSPORT).id

    async def history(client: Any) -> None:
        await _ran_at(client, imp, last_import)
        await _ran_at(client, transport, last_transport)
        # The scheduler had created the import runs of the first two missed days and three
        # hours of Finish_Transport runs before everything stopped.
        await _prescheduled(client, imp, last_import + timedelta(minutes=1), last_import + timedelta(days=2))
        await _prescheduled(client, transport, now - timedelta(hours=3), now)

    prefect(history)
    assert len(_waiting(TRANSPORT)) >= 30  # what would flood in when the worker comes back
    records = control.store.all(control.catalog.ids)

    results = {r.job_id: r for r in prefect(catch_up, control.catalog, records, now)}

    missed = _slots("30 0 * * *", last_import + timedelta(seconds=1), now)
    assert len(missed) in (4, 5)  # five days ago ran; today's 00:30 may not have come yet
    assert _waiting(IMPORT) == missed  # one run per missed day, oldest first
    assert len(results[IMPORT].kept) == 2 and len(results[IMPORT].created) == len(missed) - 2
    # Each run works on its own day: the day before its scheduled start, consecutive days.
    days = [previous_business_day(slot) for slot in _waiting(IMPORT)]
    assert days == [last_import.date() + timedelta(days=i) for i in range(len(missed))]

    latest = _slots("*/5 * * * *", now - timedelta(minutes=5), now)[-1]
    assert _waiting(TRANSPORT) == [latest]  # latest only
    assert results[TRANSPORT].dropped >= 29

    # Running it again (another deploy, a restart) adds nothing.
    assert [r for r in prefect(catch_up, control.catalog, records, now) if r.created or r.dropped] == []
    assert _waiting(IMPORT) == missed and _waiting(TRANSPORT) == [latest]
