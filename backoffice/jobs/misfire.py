"""Misfire handling after downtime (Hangfire's Strict and Relaxed modes), run by `backoffice deploy`.

While the system is down, no run starts; the scheduler may have created runs that are now late, or
none at all (slots after its horizon, a restarted server). When the system comes back, before the
worker picks anything up:

- `each_missed_slot` jobs (the daily imports, Controlling) get one run per missed slot, oldest
  first, each scheduled at its own slot time, so `business_day()` gives each run its own day;
  at most `catch_up_limit` slots, the older ones are dropped.
- `latest_only` jobs (picking lists, Finish_Transport) get one run, for the latest missed slot.

"Missed" means after the newest run that started, up to now. Late runs already there are kept when
they cover a wanted slot and deleted otherwise, so nothing floods in. Disabled jobs are skipped
(the reconciler deletes their waiting runs). The slots are those of the schedule in force: the
catalog passed in carries the operators' overrides (`Catalog.on`, see `deploy.after_deploy`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterStartTime,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.server.schemas.schedules import CronSchedule
from prefect.states import Scheduled

from backoffice.jobs.catalog import Catalog, Job
from backoffice.jobs.prefect_api import Deployed, delete_runs, read_deployments
from backoffice.jobs.store import JobRecord

log = logging.getLogger(__name__)

CATCH_UP_TAG = "catch-up"
# Windows searched backwards for the latest slots; the cron helper checks at most 1000 dates.
_WINDOWS = (timedelta(hours=1), timedelta(days=1), timedelta(days=8), timedelta(days=40), timedelta(days=400))
_WAITING = {"Scheduled", "Late"}


def _utc(value: datetime) -> datetime:
    return datetime.fromtimestamp(value.timestamp(), UTC)


@dataclass(frozen=True)
class CatchUp:
    """What the catch-up did for one job."""

    job_id: str
    created: tuple[datetime, ...]  # slots that got a new run, oldest first
    kept: tuple[datetime, ...]  # slots whose late run was already there
    dropped: int  # late runs deleted (older than the limit, or not the latest)


async def latest_slots(job: Job, after: datetime, until: datetime, count: int) -> list[datetime]:
    """The last `count` cron slots of `job` in (after, until], oldest first, in UTC."""
    schedule = CronSchedule(cron=job.cron, timezone=job.timezone)
    slots: list[datetime] = []
    for window in _WINDOWS:
        start = max(after + timedelta(seconds=1), until - window)
        slots = [_utc(d) for d in await schedule.get_dates(start=start, end=until)]
        if len(slots) >= count or start > until - window:
            break
    return slots[-count:]


async def _runs_since(
    client: PrefectClient, deployment_id: UUID, after: datetime, until: datetime
) -> list[FlowRun]:
    """Every run scheduled in [after, until], oldest first (paged: a long outage leaves many)."""
    flow_run_filter = FlowRunFilter(
        deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
        expected_start_time=FlowRunFilterExpectedStartTime(after_=after, before_=until),
    )
    runs: list[FlowRun] = []
    while True:
        page = await client.read_flow_runs(
            flow_run_filter=flow_run_filter,
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=200,
            offset=len(runs),
        )
        runs.extend(page)
        if len(page) < 200:
            return runs


async def last_started(client: PrefectClient, deployment_id: UUID) -> datetime | None:
    """The scheduled time of the newest run of the deployment that ever started."""
    runs = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
            start_time=FlowRunFilterStartTime(is_null_=False),
        ),
        sort=FlowRunSort.EXPECTED_START_TIME_DESC,
        limit=1,
    )
    return _utc(runs[0].expected_start_time) if runs and runs[0].expected_start_time else None


def _is_waiting(run: FlowRun) -> bool:
    return run.state is not None and run.state.type == StateType.SCHEDULED and run.state.name in _WAITING


async def catch_up_job(client: PrefectClient, job: Job, deployed: Deployed, now: datetime) -> CatchUp | None:
    """Create the runs `job` missed before `now` and drop the late runs it should not run."""
    did = deployed.deployment_id
    since = await last_started(client, did)
    if since is None:
        # Never ran: only late runs left by the scheduler tell how long the system was away.
        late = [r for r in await _runs_since(client, did, now - timedelta(days=400), now) if _is_waiting(r)]
        if not late or late[0].expected_start_time is None:
            return None
        since = _utc(late[0].expected_start_time) - timedelta(seconds=1)
    count = job.catch_up_limit if job.misfire == "each_missed_slot" else 1
    wanted = await latest_slots(job, since, now, count)
    runs = await _runs_since(client, did, since + timedelta(seconds=1), now)
    covered = {_utc(r.expected_start_time) for r in runs if r.expected_start_time and not _is_waiting(r)}
    kept: list[datetime] = []
    drop: list[FlowRun] = []
    for run in (r for r in runs if _is_waiting(r) and r.expected_start_time):
        slot = _utc(run.expected_start_time)  # type: ignore[arg-type]
        if slot in wanted and slot not in kept:
            kept.append(slot)
        else:
            drop.append(run)
    created = [slot for slot in wanted if slot not in kept and slot not in covered]
    for slot in created:  # oldest first: the worker takes due runs in scheduled order
        await client.create_flow_run_from_deployment(
            did,
            state=Scheduled(scheduled_time=slot),
            tags=[CATCH_UP_TAG],
            idempotency_key=f"catch-up {did} {slot.isoformat()}",
        )
    dropped = await delete_runs(client, drop)
    if not created and not dropped and not kept:
        return None
    return CatchUp(job.id, tuple(created), tuple(sorted(kept)), dropped)


async def catch_up(
    client: PrefectClient, catalog: Catalog, records: dict[str, JobRecord], now: datetime | None = None
) -> list[CatchUp]:
    """Catch up every enabled, deployed job of the catalog (see the module docstring)."""
    now = _utc(now or datetime.now(UTC))
    deployments = await read_deployments(client, catalog.ids)
    results: list[CatchUp] = []
    for job in catalog.jobs:
        if job.id not in deployments or not records[job.id].enabled:
            continue
        result = await catch_up_job(client, job, Deployed.of(deployments[job.id]), now)
        if result is not None:
            log.info(
                "catch-up %s: %d run(s) created, %d kept, %d late run(s) dropped",
                job.id,
                len(result.created),
                len(result.kept),
                result.dropped,
            )
            results.append(result)
    return results
