"""Enabled = not paused, and the cron in force: keep our records and the Prefect deployments in step,
both ways.

Our record (table `recurring_jobs`, missing row = the job's `enabled_by_default`) is the durable
truth; Prefect is made to match it: disabled = deployment paused, its schedules inactive and its
waiting runs deleted; enabled = resumed, schedules active and the next runs created.

Operators also change Prefect directly (the UI's pause toggle, `prefect deployment schedule
pause|resume`). The reconciler tells such a change from a redeploy (`prefect deploy` un-pauses
every deployment whose yaml has no `paused:`) by what it last observed, kept in a Prefect variable
per job (backoffice/jobs/observation.py): a redeploy recreates the schedules (new ids), an
operator's toggle keeps them. So a change under the same schedule ids is an operator's and is
adopted into our record (actor `prefect-ui`); anything else is overruled by the record. A fresh
Prefect database has no observations, so the record wins there too.

The cron works the same way (backoffice/jobs/schedule_store.py holds the override; none = the
catalog's cron): a schedule edited in Prefect under the same schedule id, or a cron other than
prefect.yaml's under a new one (`prefect deployment schedule create --replace`), is an operator's
and is adopted as an override (actor `prefect-ui`; prefect.yaml's own cron: a reset); a redeploy,
which puts prefect.yaml's cron back under new ids, is overruled by the override. Applying a
schedule also deletes the waiting runs Prefect's scheduler made under the old cron, and keeps the
deployment at one schedule (two would double every run).

A pass never invents such a change: it reads the observation and the record before Prefect, and
writes nothing for a job whose observation or record changed meanwhile (the record by compare and
set); `JobControl.set_enabled` and `set_schedule` write the record, then the observation, then
change Prefect. Known gap: Prefect's scheduler may, within the milliseconds of a schedule change,
still insert runs under the old cron; a pass prunes only when it applies or adopts a schedule.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

import anyio.to_thread
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import DeploymentScheduleCreate

from backoffice.errors import PrefectUnavailable
from backoffice.jobs.catalog import Catalog, Job
from backoffice.jobs.observation import (
    OBSERVED_PREFIX,
    Observation,
    observed_variable,
    operator_intent,
    read_observation,
    schedule_intent,
    write_observation,
)
from backoffice.jobs.prefect_api import (
    Deployed,
    delete_runs,
    not_started_runs,
    prefect_client,
    prune_runs_off_schedule,
    read_deployed,
    read_deployments,
    schedule_next_runs,
)
from backoffice.jobs.schedule import Schedule
from backoffice.jobs.schedule_store import ScheduleOverride, ScheduleStore
from backoffice.jobs.store import JobRecord, JobRecordStore

log = logging.getLogger(__name__)
# The observation's names are used through this module too (tests, control, the CLI).
__all__ = [
    "OBSERVED_PREFIX",
    "Adopted",
    "Observation",
    "Snapshot",
    "apply_enabled",
    "apply_schedule",
    "in_thread",
    "observed_variable",
    "operator_intent",
    "read_observation",
    "reconcile",
    "reconcile_forever",
    "reconcile_job",
    "schedule_intent",
    "write_observation",
]

PREFECT_UI_ACTOR = "prefect-ui"
RECONCILE_INTERVAL_SECONDS = 30.0
T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking database call off the event loop."""
    return await anyio.to_thread.run_sync(fn, *args)


async def apply_enabled(
    client: PrefectClient, deployed: Deployed, enabled: bool, *, every_waiting_run: bool = True
) -> None:
    """Make one deployment match `enabled` (pause, schedules, waiting runs, next runs).

    Disabling deletes every waiting run (future, late, made by hand or by the catch-up) when an
    operator disables; re-applying a record (after a redeploy) with `every_waiting_run=False`
    deletes only what the scheduler made, as a run started by hand since is someone's intent
    (it ends Skipped, or runs when forced).
    """
    did = deployed.deployment_id
    if enabled:
        for sid, active in deployed.schedules:
            if not active:
                await client.update_deployment_schedule(did, sid, active=True)
        if deployed.paused:
            await client.resume_deployment(did)
        # The scheduler would create them within its loop; do it now so the next run shows.
        await schedule_next_runs(client, did)
        return
    if not deployed.paused:
        await client.pause_deployment(did)  # also deletes the auto-scheduled runs
    for sid, active in deployed.schedules:
        if active:
            await client.update_deployment_schedule(did, sid, active=False)
    # pause_deployment drops only future auto-scheduled runs; the rest is chosen here.
    waiting = await not_started_runs(client, did)
    await delete_runs(client, [run for run in waiting if every_waiting_run or run.auto_scheduled])


async def apply_schedule(
    client: PrefectClient, deployed: Deployed, schedule: Schedule, enabled: bool
) -> Deployed:
    """Make the deployment run on `schedule` alone, and its waiting runs follow it; how it is left.

    The catalog declares one schedule per job: a second one (added in Prefect) would double every
    run, so all but the first are deleted, and a deployment left with none gets one. Prefect
    deletes the future runs its scheduler made when a schedule changes; the late ones, and any it
    made under the old cron in the meantime, are deleted here. Runs made by hand or by the
    catch-up stay. An enabled job gets its next runs under the new cron at once.
    """
    did = deployed.deployment_id
    reshaped = len(deployed.crons) != 1
    if not deployed.crons:
        await client.create_deployment_schedules(
            did, [DeploymentScheduleCreate(schedule=schedule.client(), active=enabled)]
        )
    for sid, _ in deployed.crons[1:]:
        await client.delete_deployment_schedule(did, sid)
    for sid, found in deployed.crons[:1]:
        if found != schedule:
            await client.update_deployment_schedule(did, sid, schedule=schedule.client())
    if reshaped:
        left = await read_deployed(client, deployed.job_id) if deployed.job_id else None
        deployed = left or deployed
    else:
        deployed = replace(deployed, crons=tuple((sid, schedule) for sid, _ in deployed.crons))
    await prune_runs_off_schedule(client, did, schedule)
    if enabled and deployed.enabled:  # a paused one gets them when it is resumed
        await schedule_next_runs(client, did)
    return deployed


@dataclass(frozen=True)
class Adopted:
    """An operator's change in Prefect, taken into our records.

    `enabled` is the job's Enabled record after the change; `schedule` is the cron adopted from
    Prefect, None when the change was a pause or resume (a pass adopting both reports two).
    """

    job_id: str
    enabled: bool
    schedule: Schedule | None = None

    @property
    def message(self) -> str:
        """What was taken in, in words."""
        if self.schedule is not None:
            return f"schedule changed to {self.schedule} in Prefect; recorded"
        return f"{'enabled' if self.enabled else 'disabled'} in Prefect; recorded"


@dataclass(frozen=True)
class Snapshot:
    """What a pass read about a job, in this order: our last observation, the record, Prefect."""

    before: Observation | None
    record: JobRecord
    deployed: Deployed
    override: ScheduleOverride | None = None


async def reconcile_job(
    client: PrefectClient,
    store: JobRecordStore,
    job: Job,
    seen: Snapshot,
    schedules: ScheduleStore | None = None,
) -> list[Adopted]:
    """One job: adopt an operator's change made in Prefect, else make Prefect match the records.

    Decided on `seen` only while it still holds: when the observation or a record changed since
    (an API/CLI change landed in between), nothing more is written and the next pass decides afresh.
    """
    schedules = schedules or ScheduleStore(store.engine)
    if await read_observation(client, job.id) != seen.before:
        log.info("job %s changed while reconciling; left to the next pass", job.id)
        return []
    adopted: list[Adopted] = []
    record, deployed, override = seen.record, seen.deployed, seen.override
    intent = operator_intent(seen.before, deployed) if seen.before is not None else None
    if intent is not None and intent != record.enabled:
        changed = await in_thread(store.compare_and_set, record, intent, PREFECT_UI_ACTOR)
        if changed is None:
            return []  # an operator changed the record meanwhile: theirs is the newer word
        record = changed
        adopted.append(Adopted(job.id, intent))
        log.info("job %s %s in Prefect; recorded", job.id, "enabled" if intent else "disabled")
    elif (
        not deployed.is_fully(record.enabled)
        and await in_thread(store.get, job.id, job.enabled_by_default) != record
    ):
        return []  # never overrule Prefect with a record that is no longer current

    in_force = override.schedule if override is not None else job.schedule
    edited = schedule_intent(seen.before, deployed, job.schedule) if seen.before is not None else None
    if edited is not None and edited != in_force:
        # Edited back to prefect.yaml's cron: that is a reset, not an override.
        new = None if edited == job.schedule else edited
        change = await in_thread(
            schedules.compare_and_set, job.id, override, new, PREFECT_UI_ACTOR, job.schedule
        )
        if change is None:
            return adopted  # an operator changed the schedule meanwhile; the next pass applies it
        in_force = edited
        adopted.append(Adopted(job.id, record.enabled, edited))
        log.info("job %s: schedule changed to %s in Prefect; recorded", job.id, edited)
    elif not deployed.runs_on(in_force) and await in_thread(schedules.get, job.id) != override:
        return adopted  # never overrule Prefect with an override that is no longer current
    if edited is not None or not deployed.runs_on(in_force):
        deployed = await apply_schedule(client, deployed, in_force, record.enabled)

    if not deployed.is_fully(record.enabled):
        every_waiting_run = any(a.schedule is None for a in adopted)
        await apply_enabled(client, deployed, record.enabled, every_waiting_run=every_waiting_run)
        left = Observation.after_apply(deployed, record.enabled)
    else:
        if not record.enabled:
            # In step, but the scheduler may have slipped runs in while a redeploy had un-paused it.
            waiting = await not_started_runs(client, deployed.deployment_id)
            await delete_runs(client, [run for run in waiting if run.auto_scheduled])
        left = Observation.of(deployed)
    left = left.on(in_force)
    if left != seen.before:  # in step and unchanged (most passes): nothing to write
        await write_observation(client, job.id, left)
    return adopted


async def reconcile(
    store: JobRecordStore, catalog: Catalog, schedules: ScheduleStore | None = None
) -> list[Adopted]:
    """Reconcile every deployed job of the catalog once: Enabled records and schedule overrides.

    The observations and the records are read before Prefect. An API/CLI change writes the record
    and then the observation before it touches Prefect, so whatever of it this pass sees in Prefect
    also shows in the record, or in the observation re-read before acting: never as a toggle.
    `schedules` defaults to the overrides in the Enabled records' database.
    """
    schedules = schedules or ScheduleStore(store.engine)
    adopted: list[Adopted] = []
    async with prefect_client() as client:
        before = {job_id: await read_observation(client, job_id) for job_id in catalog.ids}
        records = await in_thread(store.all, catalog.ids, catalog.enabled_defaults)
        overrides = await in_thread(schedules.all, catalog.ids)
        deployments = await read_deployments(client, catalog.ids)
        for job in catalog.jobs:
            if job.id in deployments:
                deployed = Deployed.of(deployments[job.id])
                seen = Snapshot(before[job.id], records[job.id], deployed, overrides.get(job.id))
                adopted.extend(await reconcile_job(client, store, job, seen, schedules))
    return adopted


async def reconcile_forever(
    store: JobRecordStore,
    catalog_loader: Callable[[], Catalog],
    interval: float = RECONCILE_INTERVAL_SECONDS,
    also: Callable[[Catalog, datetime | None], Any] | None = None,
) -> None:
    """Reconcile every `interval` seconds until cancelled; an unreachable Prefect is waited out.

    `also(catalog, None)` runs after each pass (a hook for tests and other periodic duties).
    """
    while True:
        try:
            catalog = catalog_loader()
            await reconcile(store, catalog)
            if also is not None:
                await also(catalog, None)
        except PrefectUnavailable as exc:
            log.warning("reconciler: %s", exc.message)
        except Exception:  # one bad pass must not stop the loop that keeps jobs in step
            log.exception("reconciler pass failed; retrying in %.0f s", interval)
        await asyncio.sleep(interval)
