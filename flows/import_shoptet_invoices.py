"""Import_Shoptet_yesterday_CZK / _EUR: a day's Shoptet invoices of one currency into our database."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import State

from backoffice.accounting.shoptet_import import ImportReport, check_currency, import_invoices
from backoffice.jobs.resources import job_resources
from backoffice.jobs.runtime import business_day, skip_if_disabled
from backoffice.jobs.timeouts import with_job_timeout


@task(name="import-invoices", cache_policy=NONE)
def import_day(currency: str, day: date) -> ImportReport:
    """Fetch the day's invoices of `currency` from Shoptet and upsert them with their items."""
    with job_resources() as jobs:
        # The client first: a missing token fails the run before anything else happens.
        client = jobs.shoptet
        return import_invoices(client, jobs.engine, day, currency)


@task(name="publish-invoice-report", cache_policy=NONE)
def publish_report(report: ImportReport) -> None:
    """A table artifact: invoices imported/updated/unchanged, the day's totals, and flagged invoices."""
    rows = [
        {"measure": "invoices fetched", "value": str(report.fetched)},
        {"measure": "invoices imported (new)", "value": str(report.imported)},
        {"measure": "invoices updated", "value": str(report.updated)},
        {"measure": "invoices unchanged", "value": str(report.unchanged)},
        {"measure": f"total with VAT ({report.currency})", "value": str(report.total_with_vat)},
        {"measure": f"total without VAT ({report.currency})", "value": str(report.total_without_vat)},
        {"measure": f"VAT ({report.currency})", "value": str(report.total_vat)},
        {"measure": "invoices flagged (null amount or price on a line)", "value": str(len(report.flagged))},
    ]
    # One row per flagged invoice: stored as Shoptet sent it, for somebody to look at.
    rows += [{"measure": "flagged invoice", "value": flag} for flag in report.flagged]
    create_table_artifact(
        table=rows,
        key=f"shoptet-invoices-{report.currency.lower()}",
        description=f"Shoptet invoices in {report.currency} created on {report.day.isoformat()} "
        "(totals over valid, not cancelled, invoices).",
    )


@with_job_timeout
@flow(name="import-shoptet-invoices")
def import_shoptet_invoices(
    currency: str, day: date | None = None, force: bool = False
) -> ImportReport | State[Any]:
    """Import the Shoptet invoices of `currency` created on `day` (default: the business day).

    The business day is the run's scheduled start in Europe/Prague minus one day. Invoices are
    upserted by code with their items, so a re-run adds nothing twice and updates what changed;
    payments matched later (paid, paid_at) are kept. Ends with a table artifact of the counts
    and the totals with and without VAT.
    """
    if (skipped := skip_if_disabled(force)) is not None:
        return skipped
    currency = check_currency(currency)
    day = business_day(day)
    report = import_day(currency, day)
    publish_report(report)
    get_run_logger().info(
        "%s invoices of %s: %d imported, %d updated, %d unchanged",
        currency,
        day.isoformat(),
        report.imported,
        report.updated,
        report.unchanged,
    )
    if report.flagged:
        get_run_logger().warning(
            "Invoices with a null amount or price on a line: %s", "; ".join(report.flagged)
        )
    return report
