"""A late (or re-run) "yesterday" job works on the day it was scheduled for, not on the wall clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from prefect.flow_engine import run_flow
from prefect.states import Scheduled
from sqlalchemy import Engine, select

from backoffice.accounting.models import Invoice
from backoffice.calendar import PRAGUE
from backoffice.integrations.fakes.shoptet import DEFAULT_TOKEN, FakeShoptet
from backoffice.jobs.control import JobControl
from backoffice.settings import Settings
from flows.import_shoptet_invoices import import_shoptet_invoices
from tests.deployments.conftest import deployment, prefect
from tests.servers import serve

pytestmark = [pytest.mark.prefect, pytest.mark.xdist_group("deployments")]

JOB = "Import_Shoptet_yesterday_CZK"
DAY = date(2026, 10, 13)  # the business day of the run scheduled for 14 October 00:20


@pytest.fixture
def fake() -> FakeShoptet:
    """A fake Shoptet with invoices on DAY and the days around it."""
    return FakeShoptet(5, days=[DAY - timedelta(days=1), DAY, DAY + timedelta(days=1)], invoices_per_day=25)


@pytest.fixture
def settings(make_settings: Callable[..., Settings], fake: FakeShoptet) -> Iterator[Settings]:
    """Test settings pointing at the fake Shoptet, served on loopback."""
    with serve(fake.app) as url:
        yield make_settings(shoptet_base_url=url, shoptet_api_token=DEFAULT_TOKEN)


def _codes(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(Invoice.code)).scalars())


def _run_scheduled(parameters: dict[str, Any], slot: datetime) -> Any:
    """Create a run of the deployment scheduled at `slot` (long past) and run it as the worker would."""
    deployment_id = deployment(JOB).id
    flow_run = prefect(
        lambda c: c.create_flow_run_from_deployment(
            deployment_id, parameters=parameters, state=Scheduled(scheduled_time=slot)
        )
    )
    return run_flow(
        import_shoptet_invoices, flow_run=flow_run, parameters=flow_run.parameters, return_type="state"
    )


@pytest.mark.usefixtures("use_settings")
def test_a_forced_late_run_of_a_disabled_job_imports_its_scheduled_day(
    control: JobControl, engine: Engine, fake: FakeShoptet
) -> None:
    asyncio.run(control.set_enabled(JOB, False, "ops"))
    slot = datetime.combine(DAY + timedelta(days=1), time(0, 20), PRAGUE)

    skipped = _run_scheduled({"currency": "CZK"}, slot)
    assert skipped.is_completed() and skipped.name == "Skipped"
    assert _codes(engine) == set()

    state = _run_scheduled({"currency": "CZK", "force": True}, slot)
    assert state.is_completed(), state.message
    start = datetime.combine(DAY, time(0), PRAGUE)
    expected = {
        raw["code"]
        for raw in fake.invoices_between(start, start + timedelta(days=1) - timedelta(seconds=1))
        if raw["price"]["currencyCode"] == "CZK"
    }
    assert expected and _codes(engine) == expected  # that day's invoices, nothing of today
