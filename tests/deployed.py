"""The real prefect.yaml deployed into this process's Prefect harness, once, for the tests that
read jobs through the dashboard or the metrics (the deployment tests have their own fixture)."""

from __future__ import annotations

import asyncio
from functools import cache

from sqlalchemy import Engine

from backoffice.jobs.catalog import Catalog, load_catalog
from backoffice.jobs.prefect_api import api_url
from backoffice.jobs.store import JobRecordStore
from backoffice.jobs.sync import reconcile
from tests.deployments.conftest import deploy_all


@cache
def _deploy(prefect_api_url: str) -> Catalog:
    deploy_all()
    return load_catalog()


def deployed_catalog() -> Catalog:
    """The catalog, deployed with `prefect deploy --all` into the current harness (once per harness)."""
    url = api_url()
    assert url, "the Prefect harness is not running (request the prefect_server fixture)"
    return _deploy(url)


def in_step(engine: Engine, catalog: Catalog) -> None:
    """Bring Prefect in step with the Enabled records of this database (blocking)."""
    asyncio.run(reconcile(JobRecordStore(engine), catalog))
