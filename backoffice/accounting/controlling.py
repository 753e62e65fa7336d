"""The controlling report of a business day: what was invoiced, what Comgate paid out, what needs a person.

    report = build_report(engine, day, window_end=now, failed_runs=read_failed_flow_runs(start, now))

Figures of the day: invoices per currency (issued that day in Europe/Prague), Comgate payouts per
currency (transfer date = the day) with matched and unmatched payments. Things to act on, as they stand
now: invoices past due and unpaid, transport boxes in `Error`; and over the 24 hours before
`window_end`: scheduled tasks that failed or whose lock ran out, and failed runs of the job flows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine

from backoffice.accounting.report_store import (
    BoxInError,
    InvoiceTotals,
    OverdueInvoice,
    PayoutTotals,
    ReportStore,
    TaskProblem,
    UnmatchedPayment,
)
from backoffice.calendar import day_bounds
from backoffice.jobs.catalog import load_catalog

WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class FailedFlowRun:
    """A run of a job flow that ended Failed, Crashed or TimedOut."""

    flow_name: str
    run_name: str
    state: str
    expected_start: datetime | None
    message: str | None


@dataclass(frozen=True)
class ControllingReport:
    """Everything the report shows, computed once and rendered as markdown, tables, HTML and e-mail."""

    day: date
    window_start: datetime
    window_end: datetime
    invoices: list[InvoiceTotals]
    payouts: list[PayoutTotals]
    unmatched_payments: list[UnmatchedPayment]
    overdue_invoices: list[OverdueInvoice]
    boxes_in_error: list[BoxInError]
    task_problems: list[TaskProblem]
    failed_flow_runs: list[FailedFlowRun] = field(default_factory=list)

    @property
    def overdue_totals(self) -> dict[str, Decimal]:
        """Sum of past-due invoices per currency."""
        totals: dict[str, Decimal] = {}
        for invoice in self.overdue_invoices:
            totals[invoice.currency] = totals.get(invoice.currency, Decimal(0)) + invoice.total_with_vat
        return dict(sorted(totals.items()))

    @property
    def issues(self) -> int:
        """How many things wait for a person (for the e-mail subject)."""
        return (
            len(self.unmatched_payments)
            + len(self.overdue_invoices)
            + len(self.boxes_in_error)
            + len(self.task_problems)
            + len(self.failed_flow_runs)
        )


def job_flow_names() -> list[str]:
    """The flows of the job catalog whose failed runs the report lists (each once, catalog order)."""
    return list(dict.fromkeys(job.flow_name for job in load_catalog().jobs))


def build_report(
    engine: Engine, day: date, window_end: datetime, failed_runs: list[FailedFlowRun] | None = None
) -> ControllingReport:
    """Read every figure of the report of `day` from the database."""
    queries = ReportStore(engine)
    start, end = day_bounds(day)
    window_start = window_end - WINDOW
    payouts, unmatched = queries.payouts_by_currency(day)
    return ControllingReport(
        day=day,
        window_start=window_start,
        window_end=window_end,
        invoices=queries.invoices_by_currency(start, end),
        payouts=payouts,
        unmatched_payments=unmatched,
        overdue_invoices=queries.overdue_invoices(day),
        boxes_in_error=queries.boxes_in_error(),
        task_problems=queries.task_problems(window_start, window_end),
        failed_flow_runs=list(failed_runs or []),
    )


def read_failed_flow_runs(start: datetime, end: datetime) -> list[FailedFlowRun]:
    """Runs of the job flows expected to start in [start, end) that failed, crashed or timed out."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterId,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=job_flow_names())),
            flow_run_filter=FlowRunFilter(
                # TimedOut is a state of type FAILED, so these two types cover all three.
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.FAILED, StateType.CRASHED])
                ),
                expected_start_time=FlowRunFilterExpectedStartTime(after_=start, before_=end),
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=200,
        )
        flow_ids = list({run.flow_id for run in runs})
        flows = client.read_flows(flow_filter=FlowFilter(id=FlowFilterId(any_=flow_ids))) if flow_ids else []
    names = {flow.id: flow.name for flow in flows}
    return [
        FailedFlowRun(
            flow_name=names.get(run.flow_id, str(run.flow_id)),
            run_name=run.name,
            state=(run.state.name if run.state else None) or "Failed",
            expected_start=run.expected_start_time,
            message=run.state.message if run.state else None,
        )
        for run in runs
    ]
