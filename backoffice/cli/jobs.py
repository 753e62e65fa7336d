"""`backoffice jobs …`: the recurring jobs (list, enable, disable, schedule, run now, the reconciler)."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
from collections.abc import Coroutine
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import typer

from backoffice.db import create_db_engine
from backoffice.errors import BackofficeError
from backoffice.jobs.catalog import load_catalog
from backoffice.jobs.control import JobControl
from backoffice.jobs.status import JobStatus
from backoffice.jobs.sync import RECONCILE_INTERVAL_SECONDS, reconcile, reconcile_forever
from backoffice.settings import get_settings

app = typer.Typer(help="Recurring jobs (Prefect deployments).", no_args_is_help=True)
T = TypeVar("T")
# Marks a cron an operator set (`backoffice jobs schedule`) in `backoffice jobs list`.
OVERRIDE_MARK = "[override]"


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _control() -> JobControl:
    return JobControl(create_db_engine(get_settings()))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; a BackofficeError becomes `error: …` and exit code 1."""
    try:
        return asyncio.run(coro)
    except BackofficeError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc


def _when(value: datetime | None, timezone: str | None = None) -> str:
    """A time in the job's zone (operators read Prague time), else the machine's."""
    if value is None:
        return "-"
    return value.astimezone(ZoneInfo(timezone) if timezone else None).strftime("%Y-%m-%d %H:%M")


def _row(s: JobStatus) -> list[str]:
    last = s.last_run
    duration = f"{last.duration_seconds:.0f}s" if last and last.duration_seconds is not None else "-"
    return [
        s.id,
        "yes" if s.enabled else "no",
        s.health,
        f"{s.cron} ({s.timezone})" + (f" {OVERRIDE_MARK}" if s.schedule_source == "override" else ""),
        _when(s.next_run_at, s.timezone),
        f"{last.state} {_when(last.start, s.timezone)}" if last else "-",
        duration,
        "yes" if s.running_now else "",
    ]


def format_table(statuses: list[JobStatus]) -> str:
    """The job list as an aligned text table."""
    header = ["JOB", "ENABLED", "HEALTH", "CRON", "NEXT RUN", "LAST RUN", "TOOK", "RUNNING"]
    rows = [header, *(_row(s) for s in statuses)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


@app.command("list")
def list_jobs() -> None:
    """Every job: enabled, health, schedule, next run, last run, running now."""
    typer.echo(format_table(_run(_control().list())))


@app.command()
def enable(job_id: str) -> None:
    """Enable a job: resume its deployment and schedules; the next run appears."""
    status = _run(_control().set_enabled(job_id, True, _actor()))
    typer.echo(
        f"{status.id} enabled; next run {_when(status.next_run_at, status.timezone)} ({status.timezone})."
    )


@app.command()
def disable(job_id: str) -> None:
    """Disable a job: pause its deployment and delete its waiting runs."""
    status = _run(_control().set_enabled(job_id, False, _actor()))
    typer.echo(f"{status.id} disabled.")


@app.command()
def schedule(
    job_id: str,
    cron: Annotated[str | None, typer.Argument(help='Five-field cron, e.g. "30 12 * * 1-5"')] = None,
    timezone: Annotated[
        str | None, typer.Option(help="IANA zone of the cron (default: the zone in force)")
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Back to the cron prefect.yaml declares")] = False,
) -> None:
    """Run a job on CRON instead of prefect.yaml's cron (kept across deploys), or --reset it."""
    if (cron is None) == (not reset):
        typer.echo('error: give either a cron ("30 12 * * 1-5") or --reset.', err=True)
        raise typer.Exit(2)
    control = _control()
    if reset:
        status = _run(control.reset_schedule(job_id, _actor()))
    else:
        status = _run(control.set_schedule(job_id, cron or "", timezone, _actor()))
    source = "override" if status.schedule_source == "override" else "prefect.yaml's"
    typer.echo(
        f"{status.id} runs on {status.cron} ({status.timezone}, {source}); "
        f"next run {_when(status.next_run_at, status.timezone)}."
    )


@app.command()
def run(
    job_id: str,
    day: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Business day to work on (YYYY-MM-DD)")
    ] = None,
    force: Annotated[bool, typer.Option(help="Run even when the job is disabled")] = False,
) -> None:
    """Start a run of the job now and print its flow run id."""
    the_day: date | None = day.date() if day else None
    started = _run(_control().run_now(job_id, _actor(), day=the_day, force=force))
    typer.echo(f"Started {started.job_id}: flow run {started.flow_run_name} ({started.flow_run_id}).")
    if not started.enabled and not force:
        typer.echo("The job is disabled: the run ends as Skipped (use --force to run it anyway).")


@app.command("reconcile")
def reconcile_command(
    loop: Annotated[bool, typer.Option(help="Keep reconciling until stopped")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between passes")] = RECONCILE_INTERVAL_SECONDS,
) -> None:
    """Bring our Enabled records and schedule overrides and Prefect in step (picks up pauses and
    schedule edits made in the Prefect UI/CLI).

    Timeouts are Prefect's own flow timeouts (backoffice.jobs.timeouts), not the reconciler's.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s reconciler %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    control = _control()
    if not loop:
        adopted = _run(reconcile(control.store, load_catalog()))
        for change in adopted:
            typer.echo(f"{change.job_id}: {change.message}.")
        typer.echo(f"Reconciled at {datetime.now(UTC).isoformat(timespec='seconds')}.")
        return

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(reconcile_forever(control.store, load_catalog, interval))
