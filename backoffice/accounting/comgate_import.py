"""Import Comgate payouts of a day as bank statements and match their payments to invoices.

    fetched = fetch_payouts(client, day, "CZK", settings)      # HTTP only
    result = store_payouts(BankStatementStore(engine), fetched.payouts, "CZK", day, now)   # database only

A payout's currency is its rows' `Měna`: a transfer carries no currency of its own (sdk-php
`src/Entity/Transfer.php`) and Comgate prints payout accounts in the domestic `number/bank` form, so
the configured payout account (`comgate_payout_account_czk` / `_eur`) is only a cross-check, and the
fallback when no row names a currency. Every transfer of the day gets a `PayoutDecision`; a payout
that is skipped or looks wrong says so there, and the flow puts the decisions into the run's artifact.
Re-running a day stores nothing twice: statements are keyed by the transfer id; payments still
unmatched get another chance to find their invoice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from backoffice.accounting.bank_statement_store import BankStatementStore, NewLine, NewStatement
from backoffice.errors import ValidationFailed
from backoffice.integrations.comgate import (
    ComgateClient,
    ComgateError,
    RowType,
    Transfer,
    TransferRow,
    currency_of_account,
)
from backoffice.settings import Settings

CURRENCIES = ("CZK", "EUR")
LINE_TYPES = {
    RowType.PAYMENT: "payment",
    RowType.REFUND: "refund",
    RowType.MONTHLY_FEE: "fee",
    RowType.OTHER_FEE: "fee",
}


@dataclass(frozen=True)
class Payout:
    """A transfer with its rows, as Comgate sent them."""

    transfer: Transfer
    rows: tuple[TransferRow, ...]


@dataclass(frozen=True)
class ImportResult:
    """What one import of a day and currency found and did."""

    day: date
    currency: str
    transfers: int
    new_transfers: int
    lines: int
    new_lines: int
    payments: Decimal
    refunds: Decimal
    fees: Decimal
    transferred: Decimal
    matched: int
    matched_now: int
    unmatched: int

    def table(self) -> list[dict[str, str]]:
        """Rows of the run's table artifact."""
        return [
            {"figure": "transfers (new)", "value": f"{self.transfers} ({self.new_transfers})"},
            {"figure": "lines (new)", "value": f"{self.lines} ({self.new_lines})"},
            {"figure": "payments matched (this run)", "value": f"{self.matched} ({self.matched_now})"},
            {"figure": "payments unmatched", "value": str(self.unmatched)},
            {"figure": f"payments {self.currency}", "value": f"{self.payments:.2f}"},
            {"figure": f"refunds {self.currency}", "value": f"{self.refunds:.2f}"},
            {"figure": f"fees {self.currency}", "value": f"{self.fees:.2f}"},
            {"figure": f"transferred {self.currency}", "value": f"{self.transferred:.2f}"},
        ]


def check_currency(currency: str) -> str:
    """`currency` upper-cased when it is one with a payout account, else a clear error."""
    normalized = currency.strip().upper()
    if normalized not in CURRENCIES:
        raise ValidationFailed(f"Unknown currency {currency!r}; use one of {', '.join(CURRENCIES)}.")
    return normalized


@dataclass(frozen=True)
class PayoutDecision:
    """What an import did with one transfer of the day, and why; a row of the run's artifact."""

    transfer_id: int
    account: str
    currency: str | None  # None: the rows name no currency and the account is not configured
    action: str  # "import", "other currency" (the other run imports it) or "skip"
    note: str = ""

    def row(self) -> dict[str, str]:
        """This decision as a row of the run's table artifact."""
        verdict = {"import": "imported", "other currency": f"left to the {self.currency} run"}
        value = verdict.get(self.action, "SKIPPED")
        return {
            "figure": f"payout {self.transfer_id} to {self.account or '?'}",
            "value": f"{value}: {self.note}" if self.note else value,
        }


@dataclass(frozen=True)
class FetchedPayouts:
    """The payouts of a day in one currency, and a decision for every transfer of that day."""

    payouts: tuple[Payout, ...]
    decisions: tuple[PayoutDecision, ...]

    @property
    def skipped(self) -> tuple[PayoutDecision, ...]:
        """Transfers no run of any currency will import."""
        return tuple(d for d in self.decisions if d.action == "skip")


def decide(payout: Payout, currency: str, settings: Settings) -> PayoutDecision:
    """Whether `payout` belongs to the `currency` run: by its rows' `Měna`, the account as a cross-check."""
    transfer = payout.transfer
    named = sorted({row.currency for row in payout.rows if row.currency})
    by_account = currency_of_account(transfer.account_counterparty, settings)
    actual = named[0] if len(named) == 1 else by_account if not named else None
    notes = []
    if len(named) > 1:
        notes.append(f"its rows name several currencies ({', '.join(named)}); book it by hand")
    elif not named:
        notes.append(
            "rows name no currency; taken from the payout account"
            if by_account
            else "rows name no currency and the account is none of the configured payout accounts"
        )
    elif by_account is None:
        notes.append(f"account is none of the configured payout accounts (rows say {actual})")
    elif by_account != actual:
        notes.append(f"account is the configured {by_account} payout account, but the rows say {actual}")
    if actual is not None and actual not in CURRENCIES:
        notes.append(f"currency {actual} has no import; book it by hand")
    action = "skip" if actual not in CURRENCIES else "import" if actual == currency else "other currency"
    account = transfer.account_counterparty
    return PayoutDecision(transfer.transfer_id, account, actual, action, "; ".join(notes))


def fetch_payouts(client: ComgateClient, day: date, currency: str, settings: Settings) -> FetchedPayouts:
    """Every transfer of `day` with its rows; those whose rows are in `currency` are the payouts."""
    fetched = [Payout(t, tuple(client.single_transfer(t.transfer_id))) for t in client.transfer_list(day)]
    decisions = tuple(decide(payout, currency, settings) for payout in fetched)
    return FetchedPayouts(
        payouts=tuple(p for p, d in zip(fetched, decisions, strict=True) if d.action == "import"),
        decisions=decisions,
    )


def to_statement(payout: Payout, currency: str) -> NewStatement:
    """The bank statement of a payout; checks the lines against Comgate's summary row."""
    details = [row for row in payout.rows if row.row_type is not RowType.SUMMARY]
    lines = tuple(
        NewLine(
            line_type=LINE_TYPES[row.row_type],
            row_type=int(row.row_type),
            payment_id=row.trans_id,
            ref_id=row.ref_id,
            variable_symbol=row.payer_variable_symbol,
            amount=row.confirmed_amount,
            fee=row.fee,
            transferred=row.transferred_amount,
            paid_at=row.paid_at,
            method=row.method,
            label=row.label,
        )
        for row in details
    )
    totals = (
        sum((line.amount for line in lines), Decimal(0)),
        sum((line.fee for line in lines), Decimal(0)),
        sum((line.transferred for line in lines), Decimal(0)),
    )
    for summary in (row for row in payout.rows if row.row_type is RowType.SUMMARY):
        # A payout whose rows do not add up to its summary is not booked half-right.
        if (summary.confirmed_amount, summary.fee, summary.transferred_amount) != totals:
            raise ComgateError(
                f"Comgate transfer {payout.transfer.transfer_id}: the rows sum to {totals}, "
                f"the summary row says {(summary.confirmed_amount, summary.fee, summary.transferred_amount)}."
            )
    transfer = payout.transfer
    return NewStatement(
        transfer_id=transfer.transfer_id,
        transfer_date=transfer.transfer_date,
        currency=currency,
        account=transfer.account_counterparty,
        account_outgoing=transfer.account_outgoing,
        variable_symbol=transfer.variable_symbol,
        total_amount=totals[0],
        total_fee=totals[1],
        total_transferred=totals[2],
        lines=lines,
    )


def store_payouts(
    store: BankStatementStore, payouts: Sequence[Payout], currency: str, day: date, now: datetime
) -> ImportResult:
    """Store the payouts once, match their payments, and sum up what the day holds."""
    statements = [to_statement(payout, currency) for payout in payouts]
    new = [s for s in statements if store.insert_if_new(s, now)]
    transfer_ids = [s.transfer_id for s in statements]
    matched_now = store.match_payments(transfer_ids, now)
    lines = store.lines_of(transfer_ids)
    payments = [line for line in lines if line.line_type == "payment"]
    return ImportResult(
        day=day,
        currency=currency,
        transfers=len(statements),
        new_transfers=len(new),
        lines=len(lines),
        new_lines=sum(len(s.lines) for s in new),
        payments=sum((line.amount for line in payments), Decimal(0)),
        refunds=sum((line.amount for line in lines if line.line_type == "refund"), Decimal(0)),
        fees=sum((line.fee for line in lines), Decimal(0)),
        transferred=sum((line.transferred for line in lines), Decimal(0)),
        matched=sum(1 for line in payments if line.invoice_id is not None),
        matched_now=matched_now,
        unmatched=sum(1 for line in payments if line.invoice_id is None),
    )
