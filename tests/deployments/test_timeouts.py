"""Job timeouts: Prefect's own flow timeout from the catalog; a timed-out run is a failed run."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from prefect.flow_engine import run_flow
from prefect.flows import load_flow_from_entrypoint

from backoffice.accounting.controlling import read_failed_flow_runs
from backoffice.integrations.fakes.shoptet import DEFAULT_TOKEN, FakeShoptet
from backoffice.jobs.alerts import ensure_alert_automation
from backoffice.jobs.catalog import PREFECT_YAML, Catalog, CatalogError, parse_catalog
from backoffice.jobs.control import JobControl
from backoffice.jobs.timeouts import TIMED_OUT, with_job_timeout
from backoffice.settings import Settings
from flows.import_shoptet_invoices import import_shoptet_invoices
from tests.deployments.conftest import Receiver, deployment, prefect
from tests.servers import serve

pytestmark = [pytest.mark.prefect, pytest.mark.xdist_group("deployments")]

JOB = "Import_Shoptet_yesterday_EUR"


def test_each_jobs_flow_carries_its_catalog_timeout(deployed_catalog: Catalog) -> None:
    for job in deployed_catalog.jobs:
        # Loaded the way the worker loads it, from the deployment's entrypoint.
        flow = load_flow_from_entrypoint(job.entrypoint)
        assert flow.timeout_seconds == job.timeout_seconds, job.id


def test_the_catalog_refuses_two_timeouts_for_one_flow() -> None:
    text = PREFECT_YAML.read_text(encoding="utf-8")
    catalog = parse_catalog(text)
    assert catalog.get("Print_Picking_morning").timeout_seconds == 600
    # The noon run of the same flow gets a timeout of its own: one flow cannot carry two.
    split = text.replace(
        "parameters: {batch: noon}",
        "parameters: {batch: noon}\n    backoffice: {misfire: latest_only, timeout_seconds: 60}",
    )
    with pytest.raises(CatalogError, match=r"must share one backoffice\.timeout_seconds"):
        parse_catalog(split)


@pytest.fixture
def fake() -> FakeShoptet:
    """A fake Shoptet whose invoice list never answers while the run goes on."""
    return FakeShoptet(seed=3)


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings],
    database_url: str,
    fake: FakeShoptet,
    receiver: tuple[Receiver, str],
) -> Iterator[Settings]:
    """Settings for the fake Shoptet with the alert webhook; the automation is removed afterwards."""
    with serve(fake.app) as shoptet_url:
        yield make_settings(
            shoptet_base_url=shoptet_url, shoptet_api_token=DEFAULT_TOKEN, alert_webhook_url=receiver[1]
        )
    prefect(ensure_alert_automation, Settings(database_url=database_url, alert_webhook_url=None), [])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # Prefect-side behaviour only
@pytest.mark.usefixtures("use_settings")
# Prefect interrupts a blocked flow with SIGALRM in the main thread, as in a worker's flow process,
# only while no other alarm handler is installed: pytest-timeout's guard runs on a thread here.
@pytest.mark.timeout(300, method="thread")
def test_a_run_past_its_timeout_ends_failed_timed_out_alerts_and_is_reported(
    settings: Settings, control: JobControl, fake: FakeShoptet, receiver: tuple[Receiver, str]
) -> None:
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL
    job = control.catalog.get(JOB)
    prefect(ensure_alert_automation, settings, [deployment(j).id for j in control.catalog.ids])
    # The real catalog with a 1 s timeout for the job: what with_job_timeout gives the flow.
    short = replace(control.catalog, jobs=(replace(job, timeout_seconds=1),))
    flow = with_job_timeout(import_shoptet_invoices, short)
    assert flow.timeout_seconds == 1

    gate = fake.hold("/api/invoices")  # the run waits for Shoptet's answer that never comes
    deployment_id = deployment(JOB).id
    flow_run = prefect(
        lambda c: c.create_flow_run_from_deployment(deployment_id, parameters={"currency": "EUR"})
    )
    try:
        state = run_flow(flow, flow_run=flow_run, parameters=flow_run.parameters, return_type="state")
    finally:
        gate.open()

    assert (state.type.value, state.name) == ("FAILED", TIMED_OUT)
    assert "exceeded timeout of 1.0 second" in (state.message or "")
    assert asyncio.run(control.status(job.id)).health == "failed"
    body = receiver[0].wait_for(str(flow_run.id))
    assert (body["job"], body["state"]) == (job.id, TIMED_OUT)
    now = datetime.now(UTC)
    reported = read_failed_flow_runs(now - timedelta(hours=1), now + timedelta(hours=1))
    assert (flow_run.name, TIMED_OUT) in {(r.run_name, r.state) for r in reported}
