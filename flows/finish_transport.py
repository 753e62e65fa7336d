"""Finish_Transport: stock `Received` transport boxes into Shoptet (every 5 minutes)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import State
from prefect.states import Failed

from backoffice.jobs.resources import job_resources
from backoffice.jobs.runtime import skip_if_disabled
from backoffice.jobs.timeouts import with_job_timeout
from backoffice.warehouse.stocking_store import BoxStockingStore
from backoffice.warehouse.transport import TransportSummary, finish_received_boxes


@task(name="stock-received-boxes", cache_policy=NONE)
def stock_received_boxes() -> TransportSummary:
    """Send each Received box's not yet stocked items to Shoptet's stock-movement API."""
    with job_resources() as jobs:
        # The client first: a missing token fails the run before any box is touched.
        client = jobs.shoptet
        return finish_received_boxes(BoxStockingStore(jobs.engine), client, jobs.settings.shoptet_stock_id)


@task(name="publish-transport-summary", cache_policy=NONE)
def publish_summary(summary: TransportSummary) -> None:
    """A table artifact: each box looked at, its outcome and items stocked."""
    rows = [
        {
            "box": b.code,
            "outcome": b.outcome,
            "items stocked": f"{b.items_stocked}/{b.items_total}",
            "stocked by this run": b.stocked_now,
            "message": b.message,
        }
        for b in summary.boxes
    ]
    rows += [
        {"box": code, "outcome": "not attempted", "message": "Shoptet unavailable"}
        for code in summary.not_attempted
    ]
    description = (
        f"{len(summary.codes('stocked'))} box(es) stocked, {len(summary.codes('error'))} in Error, "
        f"{len(summary.codes('retry')) + len(summary.not_attempted)} left for the next run."
    )
    create_table_artifact(table=rows, key="finish-transport", description=description)


@with_job_timeout
@flow(name="finish-transport")
def finish_transport(force: bool = False) -> TransportSummary | State[Any]:
    """Stock up every `Received` transport box into the Shoptet stock (settings.shoptet_stock_id).

    Each item is recorded as sent before its stock movement and as stocked after it, so stock is
    never added twice: a re-run sends only what is left. A box whose items cannot all be stocked
    goes to `Error` with the reason; a movement without a clear answer (timeout) also puts its box
    in `Error` for a person to check. The run fails when a box went to `Error` or Shoptet could not
    be reached, so the alert reaches someone; its table artifact lists every box.
    """
    if (skipped := skip_if_disabled(force)) is not None:
        return skipped
    summary = stock_received_boxes()
    logger = get_run_logger()
    if not summary.boxes:
        logger.info("No transport box is Received; nothing to stock.")
        return summary
    publish_summary(summary)
    if summary.ok:
        return summary
    problems = []
    if errored := summary.codes("error"):
        problems.append(f"box(es) {', '.join(errored)} moved to Error and need a person")
    if waiting := summary.codes("retry") + summary.not_attempted:
        problems.append(f"box(es) {', '.join(waiting)} wait for Shoptet (next run sends the rest)")
    return Failed(message="; ".join(problems) + ".")
