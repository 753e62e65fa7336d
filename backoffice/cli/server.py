"""`backoffice api`: the sidecar under uvicorn."""

from __future__ import annotations

import os
import socket
from typing import Annotated, Any

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
    workers: Annotated[
        int | None,
        typer.Option(help="uvicorn worker processes [default: one per CPU core on PostgreSQL, 1 on SQLite]"),
    ] = None,
) -> None:
    """Serve the task-queue sidecar. An embedded SQLite database is migrated first."""
    from task_queue_api.one_write import UVICORN_HTTP  # the sidecar's package, when serving it

    settings = get_settings()
    if workers is None:
        # Each worker is its own event loop and pool; SQLite has one writer, so more buy nothing.
        workers = 1 if is_sqlite(settings.database_url) else max(1, os.cpu_count() or 1)
    if is_sqlite(settings.database_url):
        # The embedded default needs no separate set-up step; PostgreSQL is migrated
        # explicitly (`backoffice db upgrade`) so several sidecars never race a migration.
        upgrade(settings.database_url)
    typer.echo(f"Sidecar: http://{host}:{port}/docs")
    admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
    where: dict[str, Any] = {"host": host, "port": port}
    listening = _listening_socket(host, port) if workers > 1 else None  # kept open while serving
    if listening is not None:
        where = {"fd": listening.fileno()}
    uvicorn.run(
        "task_queue_api.main:create_app",
        factory=True,
        **where,
        workers=workers,
        log_level="info",
        # A response's head and body in one write (one packet, one wake-up for the client).
        http=UVICORN_HTTP,
        # X-Forwarded-* is trusted only from BACKOFFICE_TRUSTED_PROXIES (the app's own middleware),
        # not from uvicorn's default of 127.0.0.1.
        proxy_headers=False,
        # Every handler masks keys (`?code=` in the access log, the bootstrap admin key anywhere).
        log_config=log_config([admin_key] if admin_key else []),
        access_log=settings.access_log,
        timeout_keep_alive=settings.keep_alive_seconds,
        # uvicorn kills a worker that does not answer its health ping within this time; on a
        # busy machine a worker's start-up imports alone can take longer than the default 5 s.
        timeout_worker_healthcheck=60,
    )


def _listening_socket(host: str, port: int) -> socket.socket:
    """The socket uvicorn's worker processes share, with TCP_NODELAY (inherited by every accepted
    connection on Linux). uvicorn's own multi-worker socket leaves Nagle on (asyncio sets
    TCP_NODELAY only where the socket says TCP), and a response written as headers, then body,
    then waits for the client's delayed ACK: measured 50 ms per request with 2 workers, 5 with 1."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(address)
    sock.set_inheritable(True)
    return sock
