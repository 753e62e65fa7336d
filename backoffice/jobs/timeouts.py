"""Job timeouts: Prefect's own flow timeout, set from the catalog's `timeout_seconds`.

A timed-out run is a failed run. With `timeout_seconds` on the flow, Prefect's engine stops a run
that outlives it and ends it Failed, named TimedOut ("Flow run exceeded timeout of N second(s)"):
health reads it as failed, the alert automation fires on `prefect.flow-run.TimedOut`, and the
controlling report lists it with the other failed runs. (The reconciler used to cancel
overrunning runs instead, which left them Cancelled: health ok, no report line.)

Prefect keeps the timeout on the flow, not on the deployment, and the worker loads the flow from
the deployment's entrypoint. So each flow module wraps its flow in `with_job_timeout`, which gives
it the `timeout_seconds` the catalog declares for the jobs of that entrypoint (read once, when the
worker imports the flow). The catalog still declares one timeout per job, and refuses two jobs of
one entrypoint with different timeouts, as one flow can carry only one.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from prefect import Flow

from backoffice.jobs.catalog import PROJECT_DIR, Catalog, load_catalog

P = ParamSpec("P")
R = TypeVar("R")

TIMED_OUT = "TimedOut"  # the name of the Failed state Prefect's engine gives a timed-out run


def _same_entrypoint(entrypoint: str, source: Path, function: str) -> bool:
    path, _, name = entrypoint.rpartition(":")
    return name == function and (PROJECT_DIR / path).resolve() == source


def catalog_timeout(flow: Flow[Any, Any], catalog: Catalog) -> int | None:
    """The catalog's timeout of the jobs whose entrypoint is `flow`; None when no job runs it."""
    source = Path(inspect.getfile(flow.fn)).resolve()
    timeouts = {
        job.timeout_seconds
        for job in catalog.jobs
        if _same_entrypoint(job.entrypoint, source, flow.fn.__name__)
    }
    # parse_catalog refuses one entrypoint with two timeouts, so there is at most one here.
    return min(timeouts) if timeouts else None


def with_job_timeout(flow: Flow[P, R], catalog: Catalog | None = None) -> Flow[P, R]:
    """`flow` with its jobs' catalog timeout (default catalog: prefect.yaml) as its `timeout_seconds`.

    Used as the outer decorator of a job flow:

        @with_job_timeout
        @flow(name="finish-transport")
        def finish_transport(...): ...
    """
    seconds = catalog_timeout(flow, catalog or load_catalog())
    if seconds is None:
        return flow
    return flow.with_options(timeout_seconds=seconds)
