"""Fixtures of the deployment tests: the real prefect.yaml deployed into the Prefect harness."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import DeploymentResponse
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backoffice.jobs.catalog import Catalog, load_catalog
from backoffice.jobs.control import JobControl
from backoffice.jobs.deploy import deploy_environment, ensure_work_pool, run_prefect_deploy
from backoffice.jobs.prefect_api import read_deployments
from backoffice.jobs.sync import observed_variable, reconcile
from backoffice.settings import Settings
from tests.helpers import ADMIN, app_client, auth
from tests.servers import serve


def deploy_all() -> None:
    """`prefect deploy --all` of the real prefect.yaml into the harness (work pool first)."""
    env = deploy_environment("local")

    async def _pool() -> None:
        async with get_client() as client:
            await ensure_work_pool(client, env["BACKOFFICE_WORK_POOL"])

    asyncio.run(_pool())
    run_prefect_deploy(env)


@pytest.fixture(scope="session")
def deployed_catalog(prefect_server: None) -> Catalog:
    """The catalog, deployed once per session with Prefect's own `prefect deploy --all`."""
    deploy_all()
    return load_catalog()


def forget_observations(catalog: Catalog) -> None:
    """Delete the reconciler's observations: the next reconcile lets the records win outright."""

    async def _forget(client: Any) -> None:
        for job_id in catalog.ids:
            with contextlib.suppress(ObjectNotFound):
                await client.delete_variable_by_name(observed_variable(job_id))

    prefect(_forget)


@pytest.fixture
def control(engine: Engine, deployed_catalog: Catalog) -> Iterator[JobControl]:
    """Job control on the test database; Prefect first brought in step with its records (all enabled).

    Observations are forgotten before and after, so no test's toggles leak into another's records.
    """
    control = JobControl(engine)
    forget_observations(deployed_catalog)
    asyncio.run(reconcile(control.store, deployed_catalog))
    yield control
    forget_observations(deployed_catalog)


@pytest.fixture
def api(settings: Settings, control: JobControl) -> Iterator[TestClient]:
    """The sidecar on the test database (Prefect: the harness)."""
    with app_client(settings) as client:
        yield client


@pytest.fixture
def operator(api: TestClient) -> dict[str, str]:
    """Auth header of an operator key named 'ops'."""
    response = api.post("/api/keys", json={"name": "ops", "role": "operator"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return auth(response.json()["key"])


def prefect(coro_fn: Any, *args: Any) -> Any:
    """Run `coro_fn(client, *args)` with a Prefect client of the harness."""

    async def _call() -> Any:
        async with get_client() as client:
            return await coro_fn(client, *args)

    return asyncio.run(_call())


def deployment(job_id: str) -> DeploymentResponse:
    """The Prefect deployment of a job."""
    found: dict[str, DeploymentResponse] = prefect(read_deployments, [job_id])
    return found[job_id]


def runs_of(job_id: str) -> list[FlowRun]:
    """Every flow run of a job's deployment, by scheduled time."""
    deployment_id = deployment(job_id).id

    async def _read(client: Any) -> list[FlowRun]:
        return list(
            await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id])),
                sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            )
        )

    return list(prefect(_read))


def delete_runs_of(job_ids: Iterable[str]) -> None:
    """Forget every flow run of these jobs (tests that read run history start clean)."""
    runs = [run for job_id in job_ids for run in runs_of(job_id)]

    async def _delete(client: Any) -> None:
        for run in runs:
            await client.delete_flow_run(run.id)

    prefect(_delete)


class Receiver:
    """A local webhook receiver that keeps every JSON body posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        self.bodies.append(await request.json())
        return Response(status_code=204)

    def wait_for(self, flow_run_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """The first body about `flow_run_id` (Prefect's automations fire within seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body in self.bodies:
                if body.get("flow_run_id") == flow_run_id:
                    return body
            time.sleep(0.2)
        raise AssertionError(f"no alert for flow run {flow_run_id}; got {self.bodies}")


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    """The receiver, served on loopback, and its URL."""
    hook = Receiver()
    with serve(hook.app) as url:
        yield hook, f"{url}/hook"
