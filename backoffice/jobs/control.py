"""Job control as the sidecar, the CLI and the dashboard use it: list, enable/disable, run now."""

from __future__ import annotations

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
from backoffice.jobs.prefect_api import Deployed, prefect_client, prefect_error_detail, read_deployments
from backoffice.jobs.status import JobStatus, job_statuses
from backoffice.jobs.store import JobRecordStore

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
        """Enable or disable a job in our record and in Prefect; returns its new status."""
        await sync.set_enabled(self.store, self.catalog, job_id, enabled, actor)
        return await self.status(job_id)

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
