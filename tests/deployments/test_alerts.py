"""Failure alerts: a failing or timed-out run of a job posts to BACKOFFICE_ALERT_WEBHOOK_URL."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prefect.flow_engine import run_flow

from backoffice.jobs.alerts import AUTOMATION_NAME, ensure_alert_automation
from backoffice.jobs.control import JobControl
from backoffice.settings import Settings
from flows.import_shoptet_invoices import import_shoptet_invoices
from tests.deployments.conftest import Receiver, deployment, prefect

pytestmark = [pytest.mark.prefect, pytest.mark.xdist_group("deployments")]


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings], database_url: str, receiver: tuple[Receiver, str]
) -> Iterator[Settings]:
    """Test settings with the alert webhook; no Shoptet token, so a Shoptet import fails at once."""
    yield make_settings(
        shoptet_base_url="http://127.0.0.1:9", shoptet_api_token="", alert_webhook_url=receiver[1]
    )
    # Leave no automation behind that posts to a receiver which is gone.
    prefect(ensure_alert_automation, Settings(database_url=database_url, alert_webhook_url=None), [])


def _install(settings: Settings, control: JobControl) -> Any:
    ids = [deployment(job_id).id for job_id in control.catalog.ids]
    return prefect(ensure_alert_automation, settings, ids)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # Prefect-side behaviour only
@pytest.mark.usefixtures("use_settings")
def test_a_failing_run_posts_to_the_webhook(
    settings: Settings, control: JobControl, receiver: tuple[Receiver, str]
) -> None:
    first = _install(settings, control)
    assert _install(settings, control) == first  # idempotent: updated in place
    assert len(prefect(lambda c: c.read_automations_by_name(AUTOMATION_NAME))) == 1

    deployment_id = deployment("Import_Shoptet_yesterday_EUR").id
    flow_run = prefect(
        lambda c: c.create_flow_run_from_deployment(deployment_id, parameters={"currency": "EUR"})
    )
    state = run_flow(
        import_shoptet_invoices, flow_run=flow_run, parameters=flow_run.parameters, return_type="state"
    )
    assert state.is_failed()

    body = receiver[0].wait_for(str(flow_run.id))
    assert body["job"] == "Import_Shoptet_yesterday_EUR"
    assert (body["flow"], body["state"]) == ("import-shoptet-invoices", "Failed")
    assert "BACKOFFICE_SHOPTET_API_TOKEN" in body["message"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_without_a_url_there_is_no_automation_and_a_log_line(
    settings: Settings, control: JobControl, caplog: pytest.LogCaptureFixture
) -> None:
    _install(settings, control)
    with caplog.at_level(logging.INFO, logger="backoffice.jobs.alerts"):
        assert (
            prefect(
                ensure_alert_automation,
                Settings(database_url=settings.database_url, alert_webhook_url=None),
                [],
            )
            is None
        )
    assert "BACKOFFICE_ALERT_WEBHOOK_URL is not set" in caplog.text
    assert prefect(lambda c: c.read_automations_by_name(AUTOMATION_NAME)) == []
