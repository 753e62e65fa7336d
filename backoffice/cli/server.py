"""`backoffice api`: the sidecar under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from backoffice.db import is_sqlite
from backoffice.logs import log_config
from backoffice.migrate import upgrade
from backoffice.settings import get_settings


def register(app: typer.Typer) -> None:
    """Add the server commands to the root command."""
    app.command()(api)


def api(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the task-queue sidecar. An embedded SQLite database is migrated first."""
    settings = get_settings()
    if is_sqlite(settings.database_url):
        # The embedded default needs no separate set-up step; PostgreSQL is migrated
        # explicitly (`backoffice db upgrade`) so several sidecars never race a migration.
        upgrade(settings.database_url)
    typer.echo(f"Sidecar: http://{host}:{port}/docs")
    admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
    uvicorn.run(
        "task_queue_api.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        # X-Forwarded-* is trusted only from BACKOFFICE_TRUSTED_PROXIES (the app's own middleware),
        # not from uvicorn's default of 127.0.0.1.
        proxy_headers=False,
        # Every handler masks keys (`?code=` in the access log, the bootstrap admin key anywhere).
        log_config=log_config([admin_key] if admin_key else []),
        # uvicorn kills a worker that does not answer its health ping within this time; on a
        # busy machine a worker's start-up imports alone can take longer than the default 5 s.
        timeout_worker_healthcheck=60,
    )
