"""The dashboard's health lights: database, Prefect API, flow runner — each green or red, with why.

The flow runner is the process work pool's workers: the pools are the ones the jobs' deployments
name, and a worker counts as alive while its last heartbeat is younger than three heartbeat
intervals (Prefect's own rule for marking a worker offline).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread

from backoffice.errors import PrefectUnavailable
from backoffice.jobs.prefect_api import api_url, prefect_client, read_deployments
from task_queue_api.context import AppContext
from task_queue_api.dashboard.views import relative

MISSED_HEARTBEATS = 3


@dataclass(frozen=True)
class Check:
    """One light: what, green or red, and the reason in a sentence."""

    name: str
    ok: bool
    reason: str


def database_check(ctx: AppContext) -> Check:
    """Reachable and migrated to the newest schema."""
    problem = ctx.schema_problem()
    if problem is None:
        return Check("Database", True, f"{ctx.engine.dialect.name} reachable and migrated")
    return Check("Database", False, problem[1])


def flow_runner_check(workers_by_pool: dict[str, list[Any]], now: datetime) -> Check:
    """Green when a worker of one of the jobs' pools sent a heartbeat lately."""
    if not workers_by_pool:
        return Check("Flow runner", False, "No job is deployed to a work pool; run `backoffice deploy`.")
    alive, last_seen = [], []
    for pool, workers in sorted(workers_by_pool.items()):
        for worker in workers:
            beat = worker.last_heartbeat_time
            if beat is None:
                continue
            beat = beat if beat.tzinfo else beat.replace(tzinfo=UTC)
            interval = worker.heartbeat_interval_seconds or 30
            if now - beat < timedelta(seconds=MISSED_HEARTBEATS * interval):
                alive.append(f"{worker.name} ({pool}, heartbeat {relative(beat, now)})")
            last_seen.append(f"{worker.name} {relative(beat, now)}")
    if alive:
        return Check("Flow runner", True, "Worker alive: " + ", ".join(alive))
    if last_seen:
        return Check("Flow runner", False, "No live worker; last heartbeats: " + ", ".join(last_seen))
    pools = ", ".join(sorted(workers_by_pool))
    return Check("Flow runner", False, f"No worker has polled work pool {pools}; start `backoffice run`.")


async def prefect_checks(job_ids: list[str]) -> list[Check]:
    """The Prefect API and the flow runner (the workers of the pools the jobs are deployed to)."""
    try:
        async with prefect_client() as client:
            failure = await client.api_healthcheck()
            if failure is not None:
                raise failure
            api = Check("Prefect API", True, f"{api_url()} answers")
            try:
                deployments = await read_deployments(client, job_ids)
                pools = {d.work_pool_name for d in deployments.values() if d.work_pool_name}
                workers = {pool: await client.read_workers_for_work_pool(pool) for pool in pools}
                runner = flow_runner_check(workers, datetime.now(UTC))
            except Exception as exc:  # a client error is a red light with its reason, never a 500
                runner = Check("Flow runner", False, _why("Could not read the workers", exc))
    except PrefectUnavailable as exc:
        return [
            Check("Prefect API", False, exc.message),
            Check("Flow runner", False, "Prefect is unreachable."),
        ]
    except Exception as exc:
        reason = _why(f"{api_url()} does not answer", exc)
        return [Check("Prefect API", False, reason), Check("Flow runner", False, "Prefect is unreachable.")]
    return [api, runner]


def _why(what: str, exc: BaseException) -> str:
    return f"{what}: {type(exc).__name__}: {exc}"[:300]


async def all_checks(ctx: AppContext, job_ids: list[str]) -> list[Check]:
    """Every light of the Health section."""
    database = await anyio.to_thread.run_sync(database_check, ctx)
    return [database, *await prefect_checks(job_ids)]
