"""Flow `controlling-report` (Controlling, 01:00): the business day in figures, and what needs a person."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import State

from backoffice.accounting.controlling import (
    WINDOW,
    ControllingReport,
    FailedFlowRun,
    build_report,
    read_failed_flow_runs,
)
from backoffice.accounting.controlling_output import (
    attention_table,
    markdown,
    render_html,
    send_email,
    summary_table,
    write_html,
)
from backoffice.jobs.resources import job_resources
from backoffice.jobs.runtime import business_day, scheduled_start, skip_if_disabled
from backoffice.jobs.timeouts import with_job_timeout
from backoffice.settings import get_settings


@task(name="read-failed-job-runs", cache_policy=NONE)
def failed_job_runs(start: datetime, end: datetime) -> list[FailedFlowRun]:
    """Runs of the five job flows that failed, crashed or timed out in the window."""
    return read_failed_flow_runs(start, end)


@task(name="gather-figures", cache_policy=NONE)
def gather(day: date, window_end: datetime, runs: list[FailedFlowRun]) -> ControllingReport:
    """Read invoices, payouts, matching, overdue invoices, boxes and tasks from the database."""
    with job_resources() as jobs:
        return build_report(jobs.engine, day, window_end, runs)


@task(name="publish-report", cache_policy=NONE)
def publish(report: ControllingReport) -> Path:
    """Markdown and table artifacts, the HTML file under the output folder, and the e-mail if set up."""
    settings = get_settings()
    create_markdown_artifact(
        key="controlling-report", markdown=markdown(report), description=f"Controlling {report.day}"
    )
    create_table_artifact(key="controlling-summary", table=summary_table(report), description="Per currency")
    attention = attention_table(report)
    if attention:
        create_table_artifact(key="controlling-attention", table=attention, description="Needs attention")
    html = render_html(report)
    path = write_html(report, html, settings.output_dir)
    send_email(report, html, settings)
    return path


@with_job_timeout
@flow(name="controlling-report")
def controlling_report(day: date | None = None, force: bool = False) -> ControllingReport | State[Any]:
    """The controlling report of `day` (default: the scheduled day before).

    Invoices per currency (count, totals with and without VAT), Comgate payouts per currency
    (payments, refunds, fees) with matched and unmatched payments, invoices past due and unpaid,
    transport boxes in Error, scheduled tasks failed or expired and failed job runs in the 24 hours
    before the scheduled start. Published as markdown and table artifacts and an HTML file under the
    output folder; e-mailed when BACKOFFICE_SMTP_HOST and BACKOFFICE_SMTP_TO are set.
    """
    if (skipped := skip_if_disabled(force)) is not None:
        return skipped
    the_day = business_day(day)
    # A plain datetime: Prefect hands out a pendulum DateTime, which the database layer must not see.
    window_end = datetime.fromtimestamp(scheduled_start().timestamp(), UTC)
    runs = failed_job_runs(window_end - WINDOW, window_end)
    report = gather(the_day, window_end, runs)
    path = publish(report)
    get_run_logger().info(
        "Controlling %s: %d item(s) need attention; report at %s", the_day, report.issues, path
    )
    return report
