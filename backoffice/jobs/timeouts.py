"""Job timeouts: a run still running after its job's `timeout_seconds` is cancelled as TimedOut.

Prefect deployments have no timeout of their own (it is a property of the flow decorator), so the
reconciler enforces the catalog's value: it moves the overrunning run to Cancelling, named
TimedOut, and the worker stops its process. The state's name makes Prefect emit
`prefect.flow-run.TimedOut`, which the alert automation forwards to the webhook.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.states import Cancelling

from backoffice.jobs.catalog import Catalog
from backoffice.jobs.prefect_api import prefect_client, read_deployments

log = logging.getLogger(__name__)

TIMED_OUT = "TimedOut"


async def enforce_timeouts(
    client: PrefectClient, catalog: Catalog, now: datetime | None = None
) -> list[UUID]:
    """Cancel every run of a catalog job that runs longer than the job's timeout; their ids."""
    now = now or datetime.now(UTC)
    deployments = await read_deployments(client, catalog.ids)
    cancelled: list[UUID] = []
    for job in catalog.jobs:
        if job.id not in deployments:
            continue
        overrunning = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[deployments[job.id].id]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING])),
                start_time=FlowRunFilterStartTime(before_=now - timedelta(seconds=job.timeout_seconds)),
            )
        )
        for run in overrunning:
            message = f"Job {job.id} ran longer than its timeout of {job.timeout_seconds} s; cancelled."
            await client.set_flow_run_state(run.id, Cancelling(name=TIMED_OUT, message=message), force=True)
            log.warning("%s (flow run %s)", message, run.id)
            cancelled.append(run.id)
    return cancelled


async def enforce_timeouts_once(catalog: Catalog, now: datetime | None = None) -> list[UUID]:
    """`enforce_timeouts` with a client of its own (what the reconciler loop calls)."""
    async with prefect_client() as client:
        return await enforce_timeouts(client, catalog, now)
