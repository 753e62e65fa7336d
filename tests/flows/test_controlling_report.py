"""controlling-report under the Prefect harness: figures, artifacts, HTML file, e-mail, failed runs."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from sqlalchemy import Engine

from backoffice.accounting.controlling import ControllingReport
from backoffice.accounting.controlling_output import money
from backoffice.settings import Settings, get_settings
from flows.controlling_report import controlling_report
from flows.import_comgate_payments import import_comgate_payments
from tests.controlling_seed import (
    DAY,
    invoice_expectations,
    seed_boxes_and_tasks,
    seed_invoices,
    seed_payouts,
)
from tests.servers import free_port

pytestmark = pytest.mark.usefixtures("prefect_server")


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    """A local SMTP receiver on a free port."""
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def settings(make_settings: Callable[..., Settings], inbox: tuple[Inbox, int]) -> Settings:
    """Test settings that mail the report to the local SMTP receiver."""
    return make_settings(
        smtp_host="127.0.0.1",
        smtp_port=inbox[1],
        smtp_from="backoffice@shop.test",
        smtp_to="controlling@shop.test",
    )


@pytest.mark.usefixtures("use_settings")
def test_report_run_publishes_figures_html_mail_and_failed_runs(
    engine: Engine, settings: Settings, inbox: tuple[Inbox, int]
) -> None:
    seed_invoices(engine)
    transfers = seed_payouts(engine)
    tasks = seed_boxes_and_tasks(engine, datetime.now(UTC))
    failed = import_comgate_payments("USD", DAY, return_state=True)  # a job run that fails
    assert failed.is_failed()

    state = controlling_report(day=DAY, return_state=True)

    assert state.is_completed()
    report = state.result()
    assert isinstance(report, ControllingReport)
    # Figures, against sums computed from the seed.
    czk_invoices = invoice_expectations("CZK")
    assert [(t.count, t.cancelled, t.total_with_vat, t.total_without_vat) for t in report.invoices] == [
        czk_invoices,
        invoice_expectations("EUR"),
    ]
    czk = report.payouts[0]
    assert czk.currency == "CZK"
    assert czk.payments == sum(r.confirmed_amount for r in transfers["CZK"].rows if r.row_type == 1)
    assert czk.fees == transfers["CZK"].summary().fee
    assert [i.code for i in report.overdue_invoices] == ["D2", "D1"]
    assert [b.code for b in report.boxes_in_error] == ["BOX-1", "BOX-2"]
    assert {p.id for p in report.task_problems} >= {tasks["failed"], tasks["expired"], tasks["ran_out"]}
    failed_run_id = failed.state_details.flow_run_id
    assert failed_run_id is not None
    with get_client(sync_client=True) as client:
        failed_name = client.read_flow_run(failed_run_id).name
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    assert (failed_name, "import-comgate-payments") in {
        (r.run_name, r.flow_name) for r in report.failed_flow_runs
    }

    # Artifacts: markdown, the per-currency table and the attention list.
    assert {a.key for a in artifacts} == {
        "controlling-report",
        "controlling-summary",
        "controlling-attention",
    }
    markdown = next(a for a in artifacts if a.key == "controlling-report").data
    assert f"| CZK | {czk_invoices[0]} | {money(czk_invoices[2])} | {money(czk_invoices[3])} |" in str(
        markdown
    )

    # The HTML file under the output folder, and the same page by e-mail.
    html = (settings.output_dir / "controlling" / "controlling-2026-11-27.html").read_text(encoding="utf-8")
    assert money(czk_invoices[2]) in html and "BOX-1" in html and failed_name in html
    messages = inbox[0].messages
    assert len(messages) == 1
    assert messages[0]["To"] == "controlling@shop.test"
    assert "Controlling 2026-11-27" in str(messages[0]["Subject"])
    body = messages[0].get_body(("html",))
    assert body is not None and money(czk_invoices[2]) in body.get_content()


@pytest.mark.usefixtures("use_settings")
def test_without_smtp_host_the_report_is_written_but_not_mailed(
    settings: Settings, inbox: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BACKOFFICE_SMTP_HOST")
    get_settings.cache_clear()

    report = controlling_report(day=DAY)

    assert isinstance(report, ControllingReport)
    assert (settings.output_dir / "controlling" / "controlling-2026-11-27.html").exists()
    assert inbox[0].messages == []
