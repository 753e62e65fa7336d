"""Job control as the sidecar, the CLI and the dashboard use it: list, enable/disable, run now."""

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
from backoffice.jobs.catalog import Catalog, load_catalog
from backoffice.jobs.prefect_api import (
    Deployed,
    prefect_client,
    prefect_error_detail,
    read_deployed,
    read_deployments,
)
from backoffice.jobs.status import JobStatus, job_statuses
from backoffice.jobs.store import JobRecord, JobRecordStore
from backoffice.jobs.sync import Observation

log = logging.getLogger(__name__)

MANUAL_TAG = "manual"


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
        self.catalog_loader = catalog_loader

    @property
    def catalog(self) -> Catalog:
        """The catalog as prefect.yaml says now."""
        return self.catalog_loader()

    async def list(self) -> list[JobStatus]:
        """Every job's status (PrefectUnavailable when Prefect cannot be reached)."""
        catalog = self.catalog
        records = await sync.in_thread(self.store.all, catalog.ids)
        async with prefect_client() as client:
            return await job_statuses(client, catalog, records)

    async def status(self, job_id: str) -> JobStatus:
        """One job's status; NotFound for a job the catalog does not have."""
        catalog = self.catalog
        job = catalog.get(job_id)
        records = await sync.in_thread(self.store.all, [job.id])
        async with prefect_client() as client:
            (status,) = await job_statuses(client, Catalog((job,)), records)
        return status

    async def set_enabled(self, job_id: str, enabled: bool, actor: str) -> JobStatus:
        """Enable or disable a job in our record and in Prefect; returns its new status.

        Prefect is read first, so an unreachable one (PrefectUnavailable, 503) changes nothing;
        when it fails during the change, the record is put back before the error surfaces.
        A job that is not deployed yet only gets its record; `backoffice deploy` applies it.
        """
        job = self.catalog.get(job_id)
        async with prefect_client() as client:
            deployed = await read_deployed(client, job.id)
            previous = await sync.in_thread(self.store.get, job.id)
            # Record first, then the observation, then Prefect: a reconciler pass that sees any of
            # this change in Prefect sees it in the record too and never takes it for a UI toggle.
            record = await sync.in_thread(self.store.set, job.id, enabled, actor)
            if deployed is not None:
                try:
                    # Left as "done" even if Prefect fails half-way: what is left then reads as a
                    # move back towards the record, which the reconciler completes, never adopts.
                    await sync.write_observation(client, job.id, Observation.after_apply(deployed, enabled))
                    await sync.apply_enabled(client, deployed, enabled)
                except Exception:
                    await self._undo(record, previous)
                    raise
        return await self.status(job_id)

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
        record = await sync.in_thread(self.store.get, job.id)
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
