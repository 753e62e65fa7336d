"""Job control as the sidecar, the CLI and the dashboard use it: list, enable/disable, set or reset
the schedule, run now."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from prefect.exceptions import PrefectHTTPStatusError
from sqlalchemy import Engine

from backoffice.errors import Conflict, ValidationFailed
from backoffice.jobs import sync
from backoffice.jobs.catalog import Catalog, Job, load_catalog
from backoffice.jobs.prefect_api import (
    Deployed,
    prefect_client,
    prefect_error_detail,
    read_deployed,
    read_deployments,
)
from backoffice.jobs.schedule import Schedule, parse_schedule
from backoffice.jobs.schedule_store import JobEventRecord, ScheduleChange, ScheduleStore
from backoffice.jobs.status import JobStatus, job_statuses
from backoffice.jobs.store import JobRecord, JobRecordStore
from backoffice.jobs.sync import Observation

log = logging.getLogger(__name__)

MANUAL_TAG = "manual"
# `JobControl.list` shadows the builtin inside the class body.
Statuses = list[JobStatus]
Events = list[JobEventRecord]


@dataclass(frozen=True)
class RunStarted:
    """A run created by "run now"."""

    job_id: str
    flow_run_id: UUID
    flow_run_name: str
    parameters: dict[str, Any]
    enabled: bool


class JobControl:
    """The jobs of the catalog, their Enabled records and their Prefect deployments."""

    def __init__(self, engine: Engine, catalog_loader: Callable[[], Catalog] = load_catalog) -> None:
        self.store = JobRecordStore(engine)
        self.schedules = ScheduleStore(engine)
        self.catalog_loader = catalog_loader

    @property
    def catalog(self) -> Catalog:
        """The catalog as prefect.yaml says now."""
        return self.catalog_loader()

    async def list(self) -> list[JobStatus]:
        """Every job's status (PrefectUnavailable when Prefect cannot be reached)."""
        return await self._statuses(self.catalog)

    async def status(self, job_id: str) -> JobStatus:
        """One job's status; NotFound for a job the catalog does not have."""
        (status,) = await self._statuses(Catalog((self.catalog.get(job_id),)))
        return status

    async def _statuses(self, catalog: Catalog) -> Statuses:
        records = await sync.in_thread(self.store.all, catalog.ids, catalog.enabled_defaults)
        overrides = await sync.in_thread(self.schedules.all, catalog.ids)
        async with prefect_client() as client:
            return await job_statuses(client, catalog, records, overrides=overrides)

    async def set_enabled(self, job_id: str, enabled: bool, actor: str) -> JobStatus:
        """Enable or disable a job in our record and in Prefect; returns its new status.

        Prefect is read first, so an unreachable one (PrefectUnavailable, 503) changes nothing;
        when it fails during the change, the record is put back before the error surfaces.
        A job that is not deployed yet only gets its record; `backoffice deploy` applies it.
        """
        job = self.catalog.get(job_id)
        async with prefect_client() as client:
            deployed = await read_deployed(client, job.id)
            previous = await sync.in_thread(self.store.get, job.id, job.enabled_by_default)
            # Record first, then the observation, then Prefect: a reconciler pass that sees any of
            # this change in Prefect sees it in the record too and never takes it for a UI toggle.
            record = await sync.in_thread(self.store.set, job.id, enabled, actor)
            if deployed is not None:
                try:
                    # Left as "done" even if Prefect fails half-way: what is left then reads as a
                    # move back towards the record, which the reconciler completes, never adopts.
                    before = await sync.read_observation(client, job.id)
                    seen = Observation.after_apply(deployed, enabled, before)
                    await sync.write_observation(client, job.id, seen)
                    await sync.apply_enabled(client, deployed, enabled)
                except Exception:
                    await self._undo(record, previous)
                    raise
        return await self.status(job_id)

    async def set_schedule(self, job_id: str, cron: str, timezone: str | None, actor: str) -> JobStatus:
        """Put `cron` (in `timezone`; default the zone in force) in force for a job; its new status.

        InvalidSchedule (422 invalid_schedule) for a cron or zone that cannot be used; see `_put`.
        """
        job = self.catalog.get(job_id)
        if timezone is None:
            override = await sync.in_thread(self.schedules.get, job.id)
            timezone = override.schedule.timezone if override is not None else job.timezone
        return await self._put(job, parse_schedule(cron, timezone), actor)

    async def reset_schedule(self, job_id: str, actor: str) -> JobStatus:
        """Put prefect.yaml's schedule back in force for a job; its new status."""
        return await self._put(self.catalog.get(job_id), None, actor)

    async def _put(self, job: Job, schedule: Schedule | None, actor: str) -> JobStatus:
        """Write the override (None: none), then Prefect.

        As `set_enabled`: Prefect is read first, then the override (with its audit event) is
        written, then the observation, then Prefect's schedule, whose waiting runs under the old
        cron are deleted and whose next run follows the new one at once; when Prefect fails, the
        override and its event are put back. A disabled job keeps the schedule for when it is
        enabled again. A job not deployed yet only gets its override; `backoffice deploy` applies it.
        """
        in_force = schedule or job.schedule
        async with prefect_client() as client:
            deployed = await read_deployed(client, job.id)
            change = await sync.in_thread(self.schedules.set, job.id, schedule, actor, job.schedule)
            if deployed is not None and (change.event_id is not None or not deployed.runs_on(in_force)):
                try:
                    record = await sync.in_thread(self.store.get, job.id, job.enabled_by_default)
                    before = await sync.read_observation(client, job.id)
                    seen = Observation.after_schedule(before, deployed, in_force)
                    await sync.write_observation(client, job.id, seen)
                    await sync.apply_schedule(client, deployed, in_force, record.enabled)
                except Exception:
                    await self._undo_schedule(change)
                    raise
        return await self.status(job.id)

    async def events(self, job_id: str) -> Events:
        """The job's audit events (schedule changes), newest first; NotFound for an unknown job."""
        job = self.catalog.get(job_id)
        return await sync.in_thread(self.schedules.events, job.id)

    async def _undo_schedule(self, change: ScheduleChange) -> None:
        """Put the override back after Prefect refused the change (unless somebody changed it since)."""
        try:
            if not await sync.in_thread(self.schedules.restore, change):
                log.warning("job %s: schedule changed again meanwhile; kept", change.job_id)
        except Exception:  # the database failing too must not hide Prefect's error
            log.exception("job %s: could not restore the schedule after Prefect failed", change.job_id)

    async def _undo(self, written: JobRecord, previous: JobRecord) -> None:
        """Put the record back after Prefect refused the change (unless somebody changed it since)."""
        try:
            if not await sync.in_thread(self.store.restore, written, previous):
                log.warning("job %s: record changed again meanwhile; kept", written.job_id)
        except Exception:  # the database failing too must not hide Prefect's error
            log.exception("job %s: could not restore the record after Prefect failed", written.job_id)

    async def run_now(
        self,
        job_id: str,
        actor: str,
        day: date | None = None,
        force: bool = False,
        parameters: Mapping[str, Any] | None = None,
    ) -> RunStarted:
        """Start a run of the job now (Hangfire's "Trigger now"); `day`/`force`/`parameters` override.

        A disabled job's run ends as Skipped unless `force` is true.
        """
        job = self.catalog.get(job_id)
        params = dict(parameters or {})
        if day is not None:
            params["day"] = day.isoformat()
        if force:
            params["force"] = True
        record = await sync.in_thread(self.store.get, job.id, job.enabled_by_default)
        async with prefect_client() as client:
            found = await read_deployments(client, [job.id])
            if job.id not in found:
                raise Conflict(
                    f"Job {job.id} is not deployed in Prefect; run `backoffice deploy` first.",
                    code="not_deployed",
                )
            deployed = Deployed.of(found[job.id])
            unknown = sorted(set(params) - deployed.parameter_names)
            if unknown:
                takes = ", ".join(sorted(deployed.parameter_names)) or "none"
                raise ValidationFailed(
                    f"Job {job.id} has no parameter {', '.join(unknown)}; its parameters: {takes}."
                )
            try:
                run = await client.create_flow_run_from_deployment(
                    deployed.deployment_id, parameters=params, tags=[MANUAL_TAG, f"by:{actor}"]
                )
            except PrefectHTTPStatusError as exc:  # Prefect validates values against the flow's signature
                if exc.response.status_code >= 500:
                    raise
                raise ValidationFailed(f"Prefect refused the run: {prefect_error_detail(exc)}") from exc
        return RunStarted(job.id, run.id, run.name, params, record.enabled)
