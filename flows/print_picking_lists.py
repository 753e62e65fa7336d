"""Print_Picking_morning / _noon: picking lists of the orders to pick, one PDF per shipping method."""

from __future__ import annotations

import uuid
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.states import Failed

from backoffice.jobs.resources import job_resources
from backoffice.jobs.runtime import skip_if_disabled
from backoffice.jobs.timeouts import with_job_timeout
from backoffice.warehouse.picking_run import PickingResult, result_markdown, slug
from backoffice.warehouse.picking_run import print_picking_lists as run_picking
from backoffice.warehouse.picking_store import PickingStore


@task(name="print-claimed-orders", cache_policy=NONE)
def print_claimed_orders(batch: str, run_id: str) -> PickingResult:
    """Claim the orders to pick, print one list per shipping method, move the orders on."""
    with job_resources() as jobs:
        # The client first: a missing token fails the run before anything is claimed.
        client = jobs.shoptet
        return run_picking(client, PickingStore(jobs.engine), jobs.settings, batch, run_id)


@with_job_timeout
@flow(name="print-picking-lists")
def print_picking_lists(batch: str = "morning", force: bool = False) -> PickingResult | State[Any]:
    """Print picking lists for the Shoptet orders in the "to pick" status (settings.picking_status_id).

    One A4 PDF per shipping method: each order with its customer, address, remarks and items
    (code, name, variant, quantity, warehouse position), then totals per product in picking-walk
    order. Each PDF goes to `lp -d <settings.printer>` when a printer is set and is always kept
    under settings.output_dir/picking; the markdown artifact links them. Printed orders move to the
    packing status, orders with an incomplete address to the check status. Orders are claimed in
    the database first, so two overlapping runs never print the same order. When the printer
    refuses a PDF its orders are not moved: the run fails naming the file, and the next run (or
    a retry of this one) sends the same file again before moving them.
    """
    if (skipped := skip_if_disabled(force)) is not None:
        return skipped
    run_id = str(flow_run.id or uuid.uuid4())
    result = print_claimed_orders(batch, run_id)
    printed = sum(len(f.orders) for f in result.files)
    create_markdown_artifact(
        result_markdown(result, batch),
        key=f"picking-lists-{slug(batch)}",
        description=f"{printed} orders printed, {len(result.to_check)} to check",
    )
    if result.ok:
        return result
    # Failed, so the alert fires; an unprinted file is named so someone can check the printer.
    return Failed(message="Picking lists incomplete: " + "; ".join(result.problems[:5]))
