"""Enabled = not paused: keep our Enabled record and the Prefect deployments in step, both ways.

Our record (table `recurring_jobs`, missing row = enabled) is the durable truth; Prefect is made to
match it: disabled = deployment paused, its schedules inactive and its waiting runs deleted;
enabled = resumed, schedules active and the next runs created.

Operators also change Prefect directly (the UI's pause toggle, `prefect deployment schedule
pause|resume`). The reconciler tells such a change from a redeploy (`prefect deploy` un-pauses
every deployment whose yaml has no `paused:`) by what it last observed, kept in a Prefect variable
per job: a redeploy recreates the schedules (new ids), an operator's toggle keeps them. So a
change under the same schedule ids is an operator's and is adopted into our record (actor
`prefect-ui`); anything else is overruled by the record. A fresh Prefect database has no
observations, so the record wins there too.

A pass never invents such a change: it reads the observation and the record before Prefect, and
writes nothing for a job whose observation or record changed meanwhile (the record by compare and
set); `JobControl.set_enabled` writes the record, then the observation, then changes Prefect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import anyio.to_thread
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import VariableCreate, VariableUpdate
from prefect.exceptions import ObjectAlreadyExists

from backoffice.errors import PrefectUnavailable
from backoffice.jobs.catalog import Catalog, Job
from backoffice.jobs.prefect_api import (
    Deployed,
    delete_runs,
    not_started_runs,
    prefect_client,
    read_deployments,
    schedule_next_runs,
)
from backoffice.jobs.store import JobRecord, JobRecordStore

log = logging.getLogger(__name__)

PREFECT_UI_ACTOR = "prefect-ui"
OBSERVED_PREFIX = "backoffice_sync_"
RECONCILE_INTERVAL_SECONDS = 30.0
T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking database call off the event loop."""
    return await anyio.to_thread.run_sync(fn, *args)


@dataclass(frozen=True)
class Observation:
    """The Prefect side of a job as we last left it (or last found it in step with the record)."""

    deployment_id: UUID
    paused: bool
    schedules: tuple[tuple[UUID, bool], ...]

    @classmethod
    def of(cls, deployed: Deployed) -> Observation:
        """Snapshot a deployment."""
        return cls(deployed.deployment_id, deployed.paused, deployed.schedules)

    @classmethod
    def after_apply(cls, deployed: Deployed, enabled: bool) -> Observation:
        """How `apply_enabled(deployed, enabled)` leaves the deployment.

        Recorded instead of re-reading Prefect: an operator's toggle that lands while we apply
        must show up as a difference on the next pass, not be taken for our own doing.
        """
        return cls(
            deployed.deployment_id, not enabled, tuple((sid, enabled) for sid, _ in deployed.schedules)
        )

    def to_json(self) -> dict[str, Any]:
        """The variable value."""
        return {
            "deployment_id": str(self.deployment_id),
            "paused": self.paused,
            "schedules": [[str(sid), active] for sid, active in self.schedules],
        }

    @classmethod
    def from_json(cls, value: Any) -> Observation | None:
        """Parse a variable value; None when it is not ours."""
        try:
            return cls(
                UUID(value["deployment_id"]),
                bool(value["paused"]),
                tuple((UUID(sid), bool(active)) for sid, active in value["schedules"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def operator_intent(before: Observation, now: Deployed) -> bool | None:
    """What an operator meant by changing Prefect since `before`: True enable, False disable.

    None when nothing an operator does changed: a different deployment (fresh Prefect database)
    or different schedule ids (a redeploy), or no change of the pause flag or schedule activity.
    """
    if before.deployment_id != now.deployment_id:
        return None
    if [sid for sid, _ in before.schedules] != [sid for sid, _ in now.schedules]:
        return None
    was = dict(before.schedules)
    towards_on = (before.paused and not now.paused) or any(a and not was[s] for s, a in now.schedules)
    towards_off = (now.paused and not before.paused) or any(was[s] and not a for s, a in now.schedules)
    if towards_on == towards_off:
        # Nothing changed (None), or both ways at once: then what Prefect shows now counts.
        return now.enabled if towards_on else None
    return towards_on


def observed_variable(job_id: str) -> str:
    """Name of the Prefect variable holding the job's observation (lowercase, as Prefect wants)."""
    return OBSERVED_PREFIX + job_id.lower()


async def read_observation(client: PrefectClient, job_id: str) -> Observation | None:
    """The last observation of a job, None when there is none."""
    variable = await client.read_variable_by_name(observed_variable(job_id))
    return Observation.from_json(variable.value) if variable is not None else None


async def write_observation(client: PrefectClient, job_id: str, seen: Observation) -> None:
    """Remember how we left the job's deployment."""
    name, value = observed_variable(job_id), seen.to_json()
    if await client.read_variable_by_name(name) is None:
        try:
            await client.create_variable(VariableCreate(name=name, value=value, tags=["backoffice"]))
            return
        except ObjectAlreadyExists:
            pass  # a concurrent reconciler created it first: update below
    await client.update_variable(VariableUpdate(name=name, value=value))


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


@dataclass(frozen=True)
class Adopted:
    """An operator's change in Prefect, taken into our record."""

    job_id: str
    enabled: bool


@dataclass(frozen=True)
class Snapshot:
    """What a pass read about a job, in this order: our last observation, the record, Prefect."""

    before: Observation | None
    record: JobRecord
    deployed: Deployed


async def reconcile_job(
    client: PrefectClient, store: JobRecordStore, job: Job, seen: Snapshot
) -> Adopted | None:
    """One job: adopt an operator's change made in Prefect, else make Prefect match the record.

    Decided on `seen` only while it still holds: when the observation or the record changed since
    (an API/CLI change landed in between), nothing is written and the next pass decides afresh.
    """
    if await read_observation(client, job.id) != seen.before:
        log.info("job %s changed while reconciling; left to the next pass", job.id)
        return None
    adopted, record, deployed = None, seen.record, seen.deployed
    intent = operator_intent(seen.before, deployed) if seen.before is not None else None
    if intent is not None and intent != record.enabled:
        changed = await in_thread(store.compare_and_set, record, intent, PREFECT_UI_ACTOR)
        if changed is None:
            return None  # an operator changed the record meanwhile: theirs is the newer word
        record, adopted = changed, Adopted(job.id, intent)
        log.info("job %s %s in Prefect; recorded", job.id, "enabled" if intent else "disabled")
    elif not deployed.is_fully(record.enabled) and await in_thread(store.get, job.id) != record:
        return None  # never overrule Prefect with a record that is no longer current
    if not deployed.is_fully(record.enabled):
        await apply_enabled(client, deployed, record.enabled, every_waiting_run=adopted is not None)
        left = Observation.after_apply(deployed, record.enabled)
    else:
        if not record.enabled:
            # In step, but the scheduler may have slipped runs in while a redeploy had un-paused it.
            waiting = await not_started_runs(client, deployed.deployment_id)
            await delete_runs(client, [run for run in waiting if run.auto_scheduled])
        left = Observation.of(deployed)
    if left != seen.before:  # in step and unchanged (most passes): nothing to write
        await write_observation(client, job.id, left)
    return adopted


async def reconcile(store: JobRecordStore, catalog: Catalog) -> list[Adopted]:
    """Reconcile every deployed job of the catalog once.

    The observations and the records are read before Prefect. An API/CLI change writes the record
    and then the observation before it touches Prefect, so whatever of it this pass sees in Prefect
    also shows in the record, or in the observation re-read before acting: never as a toggle.
    """
    adopted: list[Adopted] = []
    async with prefect_client() as client:
        before = {job_id: await read_observation(client, job_id) for job_id in catalog.ids}
        records = await in_thread(store.all, catalog.ids)
        deployments = await read_deployments(client, catalog.ids)
        for job in catalog.jobs:
            if job.id in deployments:
                seen = Snapshot(before[job.id], records[job.id], Deployed.of(deployments[job.id]))
                change = await reconcile_job(client, store, job, seen)
                if change is not None:
                    adopted.append(change)
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
