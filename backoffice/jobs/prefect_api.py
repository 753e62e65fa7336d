"""Talking to the Prefect API: one client factory that turns outages into `PrefectUnavailable`,
and the few reads and writes of deployments and flow runs the job modules share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateName,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.responses import DeploymentResponse
from prefect.client.schemas.schedules import CronSchedule
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

from backoffice.errors import Conflict, PrefectUnavailable
from backoffice.jobs.schedule import Schedule
from backoffice.settings import DATA_DIR

# Short enough that a sidecar request never hangs on a dead Prefect, long enough for a busy one.
REQUEST_TIMEOUT_SECONDS = 10.0
# Where `backoffice run` leaves the URL of the Prefect server it started (relative, like the database).
LOCAL_SERVER_FILENAME = "prefect-api-url"
LOCAL_SERVER_FILE = DATA_DIR / LOCAL_SERVER_FILENAME
# The local server answers at once or not at all.
PROBE_TIMEOUT_SECONDS = 2.0
# States of a run that has not started and may still be deleted: everything SCHEDULED except a
# retry of a run that already started (AwaitingRetry).
NOT_STARTED_NAMES = ["Scheduled", "Late", "AwaitingConcurrencySlot"]


def api_url() -> str | None:
    """The Prefect API URL in effect: PREFECT_API_URL (or the test harness's), else the local server."""
    url = get_current_settings().api.url
    return str(url) if url else local_server_url()


def local_server_url(path: Path = LOCAL_SERVER_FILE) -> str | None:
    """The API of the Prefect server `backoffice run` started on this checkout, while it answers.

    `backoffice run` writes its URL to `.data/prefect-api-url`, so a second terminal's commands
    find it without PREFECT_API_URL; a file left behind by a killed run names a dead server: None.
    """
    try:
        url = path.read_text().strip()
    except OSError:
        return None
    try:
        answers = bool(url) and httpx.get(f"{url}/health", timeout=PROBE_TIMEOUT_SECONDS).is_success
    except httpx.HTTPError:
        return None
    return url if answers else None


@asynccontextmanager
async def prefect_client() -> AsyncIterator[PrefectClient]:
    """A Prefect client for the configured API; an unreachable or failing API → PrefectUnavailable."""
    configured = get_current_settings().api.url
    url = str(configured) if configured else local_server_url()
    if not url:
        # Without a URL Prefect would start a throwaway in-process server: never what we want.
        raise PrefectUnavailable(
            "PREFECT_API_URL is not set and no Prefect server started by `backoffice run` answers "
            "on this checkout; start the system with `bin/run` (then run commands from the checkout) "
            "or point PREFECT_API_URL at your Prefect server."
        )
    try:
        # A discovered URL reaches Prefect's client through its settings, for this block only.
        with nullcontext() if configured else temporary_settings(updates={PREFECT_API_URL: url}):
            async with get_client(httpx_settings={"timeout": REQUEST_TIMEOUT_SECONDS}) as client:
                yield client
    except httpx.TransportError as exc:
        raise PrefectUnavailable(
            f"The Prefect API at {url} cannot be reached ({type(exc).__name__}); "
            "check that the Prefect server runs and PREFECT_API_URL is right, then retry."
        ) from exc
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code < 500:
            raise Conflict(
                f"Prefect refused the change ({exc.response.status_code}: {prefect_error_detail(exc)}); "
                "if a deployment was removed meanwhile, run `backoffice deploy`.",
                code="prefect_rejected",
            ) from exc
        raise PrefectUnavailable(
            f"The Prefect API at {url} answered {exc.response.status_code}; retry shortly."
        ) from exc
    except ObjectNotFound as exc:
        raise Conflict(
            "A Prefect deployment or flow run was removed meanwhile; run `backoffice deploy` and retry.",
            code="prefect_rejected",
        ) from exc


@dataclass(frozen=True)
class Deployed:
    """What Prefect holds for a job: its deployment's id, pause flag and schedules."""

    deployment_id: UUID
    flow_id: UUID
    paused: bool
    schedules: tuple[tuple[UUID, bool], ...]  # (schedule id, active), in id order
    parameter_names: frozenset[str]
    # (schedule id, its cron and zone; None for an interval or rrule schedule), in id order
    crons: tuple[tuple[UUID, Schedule | None], ...] = ()
    job_id: str = ""  # the deployment's name

    def runs_on(self, schedule: Schedule) -> bool:
        """True when the deployment has one schedule, and it is `schedule` (the cron in force)."""
        return [found for _, found in self.crons] == [schedule]

    @property
    def enabled(self) -> bool:
        """Runs get scheduled: not paused and at least one schedule active."""
        return not self.paused and (not self.schedules or any(active for _, active in self.schedules))

    def is_fully(self, enabled: bool) -> bool:
        """True when pause flag and every schedule agree with `enabled`."""
        return self.paused is not enabled and all(active is enabled for _, active in self.schedules)

    @classmethod
    def of(cls, deployment: DeploymentResponse) -> Deployed:
        """Extract from a deployment."""
        schema = deployment.parameter_openapi_schema or {}
        ordered = sorted(deployment.schedules, key=lambda s: s.id)
        return cls(
            deployment_id=deployment.id,
            flow_id=deployment.flow_id,
            paused=bool(deployment.paused),
            schedules=tuple((s.id, bool(s.active)) for s in ordered),
            parameter_names=frozenset((schema.get("properties") or {}).keys()),
            crons=tuple((s.id, _cron_of(s.schedule)) for s in ordered),
            job_id=deployment.name,
        )


def _cron_of(schedule: Any) -> Schedule | None:
    """The cron and zone of a Prefect schedule; None for one that is not a cron."""
    if not isinstance(schedule, CronSchedule):
        return None
    return Schedule(schedule.cron, schedule.timezone or "UTC")


async def read_deployments(client: PrefectClient, job_ids: Iterable[str]) -> dict[str, DeploymentResponse]:
    """The deployments named like `job_ids` (jobs not deployed are missing from the result)."""
    ids = list(job_ids)
    found = await client.read_deployments(
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=ids))
    )
    return {d.name: d for d in found if d.name in ids}


async def read_deployed(client: PrefectClient, job_id: str) -> Deployed | None:
    """The Prefect side of one job, None when it is not deployed."""
    found = await read_deployments(client, [job_id])
    return Deployed.of(found[job_id]) if job_id in found else None


async def not_started_runs(
    client: PrefectClient, deployment_id: UUID, before: datetime | None = None
) -> list[FlowRun]:
    """Runs of a deployment that wait to start (Scheduled, Late, awaiting a slot), oldest first."""
    flow_run_filter = FlowRunFilter(
        deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
        state=FlowRunFilterState(
            type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]),
            name=FlowRunFilterStateName(any_=NOT_STARTED_NAMES),
        ),
        expected_start_time=FlowRunFilterExpectedStartTime(before_=before) if before else None,
    )
    return await client.read_flow_runs(
        flow_run_filter=flow_run_filter, sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=200
    )


async def delete_runs(client: PrefectClient, runs: Iterable[FlowRun]) -> int:
    """Delete the given flow runs; one already gone is fine. Returns how many were deleted."""
    deleted = 0
    for run in runs:
        try:
            await client.delete_flow_run(run.id)
            deleted += 1
        except ObjectNotFound:
            pass
    return deleted


async def schedule_next_runs(client: PrefectClient, deployment_id: UUID) -> None:
    """Ask Prefect to create the upcoming scheduled runs now (the scheduler would, a bit later)."""
    response = await client.request(
        "POST", "/deployments/{id}/schedule", path_params={"id": deployment_id}, json={}
    )
    response.raise_for_status()


async def prune_runs_off_schedule(client: PrefectClient, deployment_id: UUID, schedule: Schedule) -> int:
    """Delete the waiting runs Prefect's scheduler made that are no slot of `schedule` (made under a
    cron no longer in force), or a second one for a slot (made by a schedule since deleted); runs
    made by hand or by the catch-up stay. Returns how many went."""
    waiting = await not_started_runs(client, deployment_id)
    made = [(_utc(r.expected_start_time), r) for r in waiting if r.auto_scheduled and r.expected_start_time]
    if not made:
        return 0
    slots = set(await schedule.slots(made[0][0], made[-1][0]))  # oldest first
    stale: list[FlowRun] = []
    for slot, run in made:
        if slot in slots:
            slots.discard(slot)  # the first run of a slot stays
        else:
            stale.append(run)
    return await delete_runs(client, stale)


def _utc(value: datetime) -> datetime:
    return datetime.fromtimestamp(value.timestamp(), UTC)


def prefect_error_detail(exc: PrefectHTTPStatusError) -> str:
    """The server's `detail` of a 4xx, for an error message."""
    try:
        body: Any = exc.response.json()
    except ValueError:
        return exc.response.text
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)
