"""The controlling report rendered: Prefect markdown and table data, an HTML file, an e-mail."""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from backoffice.accounting.controlling import ControllingReport
from backoffice.calendar import to_prague
from backoffice.settings import Settings

logger = logging.getLogger(__name__)


def money(value: Decimal) -> str:
    """An amount with two decimals (exact, no float on the way)."""
    return f"{value:.2f}"


def when(value: datetime | None) -> str:
    """A moment in Prague time, to the minute."""
    return to_prague(value).strftime("%Y-%m-%d %H:%M") if value else ""


def summary_table(report: ControllingReport) -> list[dict[str, str]]:
    """One row per currency: invoices, payouts, matching, overdue — the table artifact."""
    currencies = sorted(
        {i.currency for i in report.invoices}
        | {p.currency for p in report.payouts}
        | set(report.overdue_totals)
    )
    invoices = {i.currency: i for i in report.invoices}
    payouts = {p.currency: p for p in report.payouts}
    overdue = report.overdue_totals
    rows = []
    for currency in currencies:
        inv, pay = invoices.get(currency), payouts.get(currency)
        rows.append(
            {
                "currency": currency,
                "invoices": str(inv.count if inv else 0),
                "with VAT": money(inv.total_with_vat if inv else Decimal(0)),
                "without VAT": money(inv.total_without_vat if inv else Decimal(0)),
                "payouts": str(pay.transfers if pay else 0),
                "payments": money(pay.payments if pay else Decimal(0)),
                "refunds": money(pay.refunds if pay else Decimal(0)),
                "fees": money(pay.fees if pay else Decimal(0)),
                "transferred": money(pay.transferred if pay else Decimal(0)),
                "matched": str(pay.matched if pay else 0),
                "unmatched": str(pay.unmatched if pay else 0),
                "past due": money(overdue.get(currency, Decimal(0))),
            }
        )
    return rows


def attention_table(report: ControllingReport) -> list[dict[str, str]]:
    """Everything that waits for a person, one row each — the second table artifact."""
    rows = [
        {
            "kind": "unmatched payment",
            "what": f"VS {p.variable_symbol or '-'} ({p.payment_id or '-'})",
            "detail": f"{money(p.amount)} {p.currency}, transfer {p.transfer_id}",
        }
        for p in report.unmatched_payments
    ]
    rows += [
        {
            "kind": "invoice past due",
            "what": i.code,
            "detail": f"{money(i.total_with_vat)} {i.currency}, due {i.due_date.isoformat()}",
        }
        for i in report.overdue_invoices
    ]
    rows += [
        {"kind": "box in Error", "what": b.code, "detail": b.reason or ""} for b in report.boxes_in_error
    ]
    rows += [
        {"kind": f"task {t.status}", "what": f"{t.task_type} {t.id}", "detail": t.last_error or ""}
        for t in report.task_problems
    ]
    rows += [
        {"kind": f"flow run {r.state}", "what": f"{r.flow_name} / {r.run_name}", "detail": r.message or ""}
        for r in report.failed_flow_runs
    ]
    return rows


def markdown(report: ControllingReport) -> str:
    """The report as the run's markdown artifact."""
    lines = [f"# Controlling {report.day.isoformat()}", ""]
    table = summary_table(report)
    if table:
        headers = list(table[0])
        lines += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(row[h] for h in headers) + " |" for row in table]
    else:
        lines.append("No invoices and no payouts on this day.")
    lines += [
        "",
        f"- Unmatched payments: **{len(report.unmatched_payments)}**",
        f"- Invoices past due and unpaid: **{len(report.overdue_invoices)}**"
        + "".join(f", {c} {money(t)}" for c, t in report.overdue_totals.items()),
        f"- Transport boxes in Error: **{len(report.boxes_in_error)}**",
        f"- Scheduled tasks failed or expired ({when(report.window_start)} to {when(report.window_end)}): "
        f"**{len(report.task_problems)}**",
        f"- Failed job runs: **{len(report.failed_flow_runs)}**",
    ]
    attention = attention_table(report)
    if attention:
        lines += ["", "## Needs attention", "", "| kind | what | detail |", "|---|---|---|"]
        lines += [f"| {r['kind']} | {r['what']} | {r['detail']} |" for r in attention[:100]]
    return "\n".join(lines) + "\n"


def render_html(report: ControllingReport) -> str:
    """The report as a standalone HTML page."""
    env = Environment(
        loader=PackageLoader("backoffice.accounting", "templates"), autoescape=select_autoescape(["j2"])
    )
    env.filters["money"] = money
    env.filters["when"] = when
    return env.get_template("controlling_report.html.j2").render(report=report)


def write_html(report: ControllingReport, html: str, output_dir: Path) -> Path:
    """Write the HTML under `output_dir/controlling/`; a re-run for the day overwrites its file."""
    folder = output_dir / "controlling"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"controlling-{report.day.isoformat()}.html"
    path.write_text(html, encoding="utf-8")
    return path


def send_email(report: ControllingReport, html: str, settings: Settings) -> bool:
    """Mail the report through the BACKOFFICE_SMTP_* settings; False (and a log line) when not set up."""
    if not settings.smtp_host or not settings.smtp_to:
        logger.info("Controlling report not e-mailed: BACKOFFICE_SMTP_HOST or BACKOFFICE_SMTP_TO is not set.")
        return False
    message = EmailMessage()
    message["Subject"] = f"Controlling {report.day.isoformat()}: {report.issues} item(s) need attention"
    message["From"] = settings.smtp_from
    message["To"] = settings.smtp_to
    message.set_content(markdown(report))
    message.add_alternative(html, subtype="html")
    smtp_class = smtplib.SMTP_SSL if settings.smtp_port == 465 else smtplib.SMTP
    with smtp_class(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
        if smtp_class is smtplib.SMTP:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls()
                smtp.ehlo()
        if settings.smtp_user and settings.smtp_password:
            smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
        smtp.send_message(message)
    logger.info("Controlling report e-mailed to %s", settings.smtp_to)
    return True
