"""`backoffice deploy`: deploy the catalog with Prefect's own `prefect deploy --all`, then re-apply
what a plain deploy loses or cannot know: the Enabled records, the schedule overrides, the alert
automation and the misfire catch-up (under the schedules in force). It also creates (or resets)
the global concurrency limit `shoptet-api`: the 3 Shoptet connections every flow run shares
(`backoffice.integrations.shoptet_slots`).

Per-environment values come from `deployments/<env>.env` (the work pool, the project folder the
worker runs flows from); variables already in the environment win over the file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
    WorkPoolCreate,
)
from prefect.exceptions import ObjectNotFound
from sqlalchemy import Engine

from backoffice.errors import BackofficeError, NotFound
from backoffice.integrations.shoptet_slots import MAX_CONNECTIONS_PER_TOKEN, SHOPTET_CONCURRENCY_LIMIT
from backoffice.jobs import sync
from backoffice.jobs.alerts import ensure_alert_automation
from backoffice.jobs.catalog import PREFECT_YAML, PROJECT_DIR, Catalog
from backoffice.jobs.misfire import CatchUp, catch_up
from backoffice.jobs.prefect_api import api_url, prefect_client, read_deployments
from backoffice.jobs.schedule_store import ScheduleStore
from backoffice.jobs.store import JobRecordStore
from backoffice.settings import Settings

log = logging.getLogger(__name__)

ENV_DIR = PROJECT_DIR / "deployments"
DEFAULT_WORK_POOL = "backoffice"
DEPLOY_TIMEOUT_SECONDS = 600


class DeployFailed(BackofficeError):
    """`prefect deploy` failed, or left jobs of the catalog undeployed."""

    code = "deploy_failed"


@dataclass
class DeployReport:
    """What a deploy did."""

    deployed: list[str]
    adopted: list[sync.Adopted] = field(default_factory=list)
    alert_automation: UUID | None = None
    catch_up: list[CatchUp] = field(default_factory=list)


def read_env_file(name: str) -> dict[str, str]:
    """The `KEY=value` lines of `deployments/<name>.env` (comments and blank lines skipped)."""
    path = ENV_DIR / f"{name}.env"
    if not path.is_file():
        known = sorted(p.stem for p in ENV_DIR.glob("*.env"))
        raise NotFound(
            f"There is no environment '{name}' (deployments/{name}.env); known: {', '.join(known)}."
        )
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip('"')
    return values


def deploy_environment(env_name: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment `prefect deploy` runs with: `base` (default os.environ) over the env file."""
    env = dict(os.environ if base is None else base)
    for key, value in read_env_file(env_name).items():
        env.setdefault(key, value)
    env.setdefault("BACKOFFICE_WORK_POOL", DEFAULT_WORK_POOL)
    env.setdefault("BACKOFFICE_PROJECT_DIR", str(PROJECT_DIR))
    if url := api_url():  # the test harness sets it in Prefect's settings, not in os.environ
        env["PREFECT_API_URL"] = url
    return env


async def ensure_work_pool(client: PrefectClient, name: str) -> None:
    """Create the process work pool `name` unless it exists."""
    from prefect.workers.process import ProcessWorker

    try:
        await client.read_work_pool(name)
    except ObjectNotFound:
        template = ProcessWorker.get_default_base_job_template()
        await client.create_work_pool(
            WorkPoolCreate(name=name, type="process", base_job_template=template), overwrite=False
        )
        log.info("created process work pool %s", name)


async def ensure_shoptet_limit(client: PrefectClient) -> None:
    """Create the global concurrency limit `shoptet-api` (3 slots, active), or set it back to that."""
    try:
        found = await client.read_global_concurrency_limit_by_name(SHOPTET_CONCURRENCY_LIMIT)
    except ObjectNotFound:
        await client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=SHOPTET_CONCURRENCY_LIMIT, limit=MAX_CONNECTIONS_PER_TOKEN)
        )
        log.info("created global concurrency limit %s", SHOPTET_CONCURRENCY_LIMIT)
        return
    if found.limit != MAX_CONNECTIONS_PER_TOKEN or not found.active:
        await client.update_global_concurrency_limit(
            SHOPTET_CONCURRENCY_LIMIT,
            GlobalConcurrencyLimitUpdate(limit=MAX_CONNECTIONS_PER_TOKEN, active=True),
        )


def run_prefect_deploy(env: dict[str, str], prefect_file: Path = PREFECT_YAML) -> str:
    """`prefect --no-prompt deploy --all` from the project folder; its output, or DeployFailed."""
    command = [
        sys.executable,
        "-m",
        "prefect",
        "--no-prompt",
        "deploy",
        "--all",
        "--prefect-file",
        str(prefect_file),
    ]
    result = subprocess.run(
        command,
        cwd=prefect_file.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEPLOY_TIMEOUT_SECONDS,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise DeployFailed(f"`prefect deploy --all` failed (exit {result.returncode}):\n{output[-3000:]}")
    return output


async def after_deploy(
    engine: Engine, settings: Settings, catalog: Catalog, now: datetime | None = None
) -> DeployReport:
    """Check every job got deployed, then records and overrides → Prefect, Shoptet limit, alerts,
    misfire catch-up."""
    store = JobRecordStore(engine)
    async with prefect_client() as client:
        deployments = await read_deployments(client, catalog.ids)
    missing = [job_id for job_id in catalog.ids if job_id not in deployments]
    if missing:
        raise DeployFailed(f"These jobs are not deployed after `prefect deploy --all`: {', '.join(missing)}.")
    schedules = ScheduleStore(engine)
    adopted = await sync.reconcile(store, catalog, schedules)
    records = await sync.in_thread(store.all, catalog.ids, catalog.enabled_defaults)
    overrides = await sync.in_thread(schedules.all, catalog.ids)
    in_force = catalog.on({job_id: o.schedule for job_id, o in overrides.items()})
    async with prefect_client() as client:
        await ensure_shoptet_limit(client)
        automation = await ensure_alert_automation(client, settings, [d.id for d in deployments.values()])
        caught_up = await catch_up(client, in_force, records, now)
    return DeployReport(list(catalog.ids), adopted, automation, caught_up)


def deploy(engine: Engine, settings: Settings, catalog: Catalog, env_name: str = "local") -> DeployReport:
    """The whole `backoffice deploy` (blocking): work pool, `prefect deploy --all`, then `after_deploy`."""
    env = deploy_environment(env_name)

    async def _prepare() -> list[sync.Adopted]:
        async with prefect_client() as client:
            await ensure_work_pool(client, env["BACKOFFICE_WORK_POOL"])
        # Take in what operators toggled in Prefect while no reconciler ran (a restart): the
        # deploy recreates the schedules, after which their toggles could no longer be told apart.
        return await sync.reconcile(JobRecordStore(engine), catalog)

    adopted = asyncio.run(_prepare())
    run_prefect_deploy(env)
    report = asyncio.run(after_deploy(engine, settings, catalog))
    report.adopted[:0] = adopted
    return report
