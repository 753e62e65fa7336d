"""`backoffice deploy`: the job catalog to Prefect, with the Enabled records re-applied."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from backoffice.db import create_db_engine, is_sqlite
from backoffice.errors import BackofficeError
from backoffice.jobs.catalog import load_catalog
from backoffice.jobs.deploy import deploy as run_deploy
from backoffice.migrate import upgrade
from backoffice.settings import get_settings


def register(app: typer.Typer) -> None:
    """Add `deploy` to the root command."""
    app.command()(deploy)


def deploy(
    env: Annotated[str, typer.Option(help="Environment file deployments/<env>.env")] = "local",
) -> None:
    """Deploy the job catalog (prefect.yaml) with `prefect deploy --all`.

    Then re-apply the Enabled records, create or update the failure-alert automation and catch
    up the runs missed while the system was down.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = get_settings()
    if is_sqlite(settings.database_url):
        upgrade(settings.database_url)  # the embedded database needs no separate step
    engine = create_db_engine(settings)
    try:
        report = run_deploy(engine, settings, load_catalog(), env)
    except BackofficeError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    typer.echo(f"Deployed {len(report.deployed)} jobs: {', '.join(report.deployed)}.")
    for change in report.adopted:
        typer.echo(f"  {change.job_id}: {change.message}.")
    if report.alert_automation:
        typer.echo(
            f"  Failure alerts go to BACKOFFICE_ALERT_WEBHOOK_URL (automation {report.alert_automation})."
        )
    for item in report.catch_up:
        created = ", ".join(s.isoformat() for s in item.created) or "none"
        typer.echo(f"  Catch-up {item.job_id}: runs for {created}; {item.dropped} late run(s) dropped.")
