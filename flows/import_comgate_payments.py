"""Flow `import-comgate-payments`: the Comgate payouts of a business day, as bank statements."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import State

from backoffice.accounting.bank_statement_store import BankStatementStore
from backoffice.accounting.comgate_import import (
    FetchedPayouts,
    ImportResult,
    Payout,
    check_currency,
    fetch_payouts,
    store_payouts,
)
from backoffice.jobs.resources import job_resources
from backoffice.jobs.runtime import business_day, skip_if_disabled
from backoffice.jobs.timeouts import with_job_timeout


@task(name="fetch-comgate-payouts", cache_policy=NONE)
def fetch(day: date, currency: str) -> FetchedPayouts:
    """Read the day's transfers and their rows from Comgate; decide which are payouts in `currency`."""
    with job_resources() as jobs:
        return fetch_payouts(jobs.comgate, day, currency, jobs.settings)


@task(name="store-bank-statements", cache_policy=NONE)
def store(payouts: tuple[Payout, ...], currency: str, day: date) -> ImportResult:
    """Store new payouts as bank statements and match their payments to invoices."""
    with job_resources() as jobs:
        return store_payouts(BankStatementStore(jobs.engine), payouts, currency, day, datetime.now(UTC))


@with_job_timeout
@flow(name="import-comgate-payments")
def import_comgate_payments(
    currency: str, day: date | None = None, force: bool = False
) -> ImportResult | State[Any]:
    """Import the Comgate payouts of `day` (default: the scheduled day before) paid in `currency`.

    A payout's currency is its rows' `Měna` (the payout account is only a cross-check). Each payout
    becomes a bank statement with its payments, refunds and fees, stored once by Comgate's transfer
    id; payments are matched to invoices by variable symbol and mark them paid. Unmatched payments
    stay listed for a person. The artifact lists every transfer of the day with what became of it, so
    a skipped payout is never silent. A re-run adds nothing.
    """
    if (skipped := skip_if_disabled(force)) is not None:
        return skipped
    currency = check_currency(currency)
    the_day = business_day(day)
    fetched = fetch(the_day, currency)
    result = store(fetched.payouts, currency, the_day)
    create_table_artifact(
        key=f"comgate-payments-{currency.lower()}",
        table=result.table() + [decision.row() for decision in fetched.decisions],
        description=f"Comgate payouts in {currency} on {the_day.isoformat()}",
    )
    logger = get_run_logger()
    for decision in fetched.skipped:
        logger.warning("Comgate payout %d SKIPPED: %s", decision.transfer_id, decision.note)
    logger.info(
        "%s %s: %d transfers (%d new), %d lines, %d matched, %d unmatched",
        the_day,
        currency,
        result.transfers,
        result.new_transfers,
        result.lines,
        result.matched,
        result.unmatched,
    )
    return result
