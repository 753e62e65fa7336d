"""`backoffice run`: the whole system on one machine with one command; Ctrl-C stops all of it.

Order: migrate the embedded SQLite database → a local Prefect server unless PREFECT_API_URL names
one (on SQLite under `<data-dir>/prefect`; with BACKOFFICE_DATABASE_URL on PostgreSQL, on a database
`<ours>_prefect` of the same server, created when missing) → with --sandbox the fake Shoptet and
Comgate → `backoffice deploy` (work pool, catalog, Enabled records, alerts, misfire catch-up) →
the flow runner (`prefect worker start`) and the sidecar, which also reconciles (backoffice/duties.py).
The local Prefect server's URL is left in `<data-dir>/prefect-api-url` while it runs, for commands
in other terminals.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import httpx
import psycopg
import typer
from psycopg import sql
from sqlalchemy.engine import make_url

from backoffice.cli.procs import ChildExited, Supervisor, become_subreaper, reap
from backoffice.db import create_db_engine, is_sqlite
from backoffice.jobs.catalog import PROJECT_DIR
from backoffice.jobs.deploy import DEFAULT_WORK_POOL, read_env_file
from backoffice.jobs.prefect_api import LOCAL_SERVER_FILENAME
from backoffice.migrate import is_at_head, upgrade
from backoffice.settings import Settings

STARTUP_TIMEOUT_SECONDS = 180.0
PYTHON = sys.executable
BACKOFFICE = [PYTHON, "-m", "backoffice.cli"]


class Stop(Exception):
    """SIGTERM (or SIGINT) asked the supervisor to stop."""


def register(app: typer.Typer) -> None:
    """Add `run` to the root command."""
    app.command(name="run")(run)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(sup: Supervisor, url: str, what: str, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
    """Wait until `url` answers 2xx, checking that every child still runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sup.check()
        try:
            if httpx.get(url, timeout=2).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise ChildExited(f"{what} did not answer at {url} within {timeout:.0f} s")


def _database_env(env: dict[str, str], data_dir: Path) -> str:
    """Our database URL, with a relative SQLite path made absolute (children run elsewhere)."""
    url = env.get("BACKOFFICE_DATABASE_URL") or f"sqlite:///{data_dir / 'backoffice.db'}"
    parsed = make_url(url)
    if is_sqlite(url) and parsed.database and not Path(parsed.database).is_absolute():
        url = parsed.set(database=str(Path(parsed.database).resolve())).render_as_string(hide_password=False)
    env["BACKOFFICE_DATABASE_URL"] = url
    return url


def _migrate(url: str) -> None:
    if is_sqlite(url):
        upgrade(url)
        return
    engine = create_db_engine(Settings(database_url=url))
    try:
        if not is_at_head(engine):
            raise ChildExited("the PostgreSQL database is not migrated; run `backoffice db upgrade` first")
    finally:
        engine.dispose()


def prefect_database_url(our_url: str) -> str:
    """Prefect's database beside ours on the same PostgreSQL server (`<ours>_prefect`), created when
    missing; the URL in Prefect's driver (postgresql+asyncpg)."""
    ours = make_url(our_url)
    name = f"{ours.database}_prefect"
    # The server's maintenance database, reached as our user: CREATE DATABASE runs outside ours.
    admin = ours.set(drivername="postgresql", database="postgres", query={})
    try:
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise ChildExited(
            f"could not find or create Prefect's database {name} ({type(exc).__name__}: {exc}); create "
            "it yourself, or set PREFECT_SERVER_DATABASE_CONNECTION_URL=postgresql+asyncpg://…"
        ) from exc
    # asyncpg takes no libpq query options (sslmode=…): only the address and the credentials.
    prefect = ours.set(drivername="postgresql+asyncpg", database=name, query={})
    return prefect.render_as_string(hide_password=False)


def _start_sandbox(sup: Supervisor) -> dict[str, str]:
    """Start the fake Shoptet and Comgate; the environment that points the jobs at them."""
    from backoffice.integrations.fakes import comgate, shoptet

    shoptet_port, comgate_port = _free_port(), _free_port()
    sup.start(
        "fake Shoptet", [PYTHON, "-m", "backoffice.integrations.fakes.shoptet", "--port", str(shoptet_port)]
    )
    sup.start(
        "fake Comgate", [PYTHON, "-m", "backoffice.integrations.fakes.comgate", "--port", str(comgate_port)]
    )
    return {
        "BACKOFFICE_SHOPTET_BASE_URL": f"http://127.0.0.1:{shoptet_port}",
        "BACKOFFICE_SHOPTET_API_TOKEN": shoptet.DEFAULT_TOKEN,
        "BACKOFFICE_COMGATE_BASE_URL": f"http://127.0.0.1:{comgate_port}",
        "BACKOFFICE_COMGATE_MERCHANT": comgate.DEFAULT_MERCHANT,
        "BACKOFFICE_COMGATE_SECRET": comgate.DEFAULT_SECRET,
    }


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def run(
    sandbox: Annotated[
        bool, typer.Option(help="Also start fake Shoptet and Comgate and point the jobs at them")
    ] = False,
    host: Annotated[str, typer.Option(help="Interface of the sidecar")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the sidecar")] = 8000,
    prefect_port: Annotated[int, typer.Option(help="Port of the local Prefect server")] = 4200,
    data_dir: Annotated[Path, typer.Option(help="Where the embedded databases live")] = Path(".data"),
    env_name: Annotated[str, typer.Option("--env", help="Environment file deployments/<env>.env")] = "local",
) -> None:
    """Run everything: Prefect server, the scheduled jobs (prefect.yaml), the flow runner and the sidecar."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    for key, value in read_env_file(env_name).items():
        env.setdefault(key, value)
    env.setdefault("BACKOFFICE_WORK_POOL", DEFAULT_WORK_POOL)
    env.setdefault("BACKOFFICE_PROJECT_DIR", str(PROJECT_DIR))
    env.setdefault("BACKOFFICE_OUTPUT_DIR", str(data_dir / "output"))
    env["PYTHONUNBUFFERED"] = "1"
    _migrate(_database_env(env, data_dir))

    become_subreaper()
    sup = Supervisor(env, PROJECT_DIR)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    lines: list[str] = []
    url_file, started_prefect, wrote_url = data_dir / LOCAL_SERVER_FILENAME, False, False
    try:
        if env.get("PREFECT_API_URL"):
            api = env["PREFECT_API_URL"].rstrip("/")
        else:
            api = f"http://127.0.0.1:{prefect_port}/api"
            # A laptop's SQLite under a burst of runs: wait for the write lock rather than fail.
            env.update(PREFECT_API_URL=api, PREFECT_SERVER_ANALYTICS_ENABLED="false")
            env.setdefault("PREFECT_SERVER_DATABASE_TIMEOUT", "60")
            env.setdefault("PREFECT_HOME", str(data_dir / "prefect"))
            if not is_sqlite(env["BACKOFFICE_DATABASE_URL"]) and not (
                env.get("PREFECT_SERVER_DATABASE_CONNECTION_URL")
                or env.get("PREFECT_API_DATABASE_CONNECTION_URL")
            ):
                url = prefect_database_url(env["BACKOFFICE_DATABASE_URL"])
                env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = url
                lines.append(f"  Prefect database    {make_url(url).render_as_string()}")
            started_prefect = True
            sup.start(
                "Prefect server",
                [
                    PYTHON,
                    "-m",
                    "prefect",
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(prefect_port),
                ],
            )
        _wait_http(sup, f"{api}/health", "Prefect server")
        if started_prefect:
            # Commands in a second terminal find the server we started here (see local_server_url).
            url_file.write_text(api + "\n")
            wrote_url = True
        lines.append(f"  Prefect UI          {api.removesuffix('/api')}")
        if sandbox:
            fakes = _start_sandbox(sup)
            env.update(fakes)
            lines.append(f"  Fake Shoptet        {fakes['BACKOFFICE_SHOPTET_BASE_URL']}")
            lines.append(f"  Fake Comgate        {fakes['BACKOFFICE_COMGATE_BASE_URL']}")
        # The sidecar needs no deployment: let it start while the catalog deploys.
        sup.start("sidecar", [*BACKOFFICE, "api", "--host", host, "--port", str(port)])
        deploy = sup.start("backoffice deploy", [*BACKOFFICE, "deploy", "--env", env_name])
        while deploy.process.poll() is None:
            time.sleep(0.2)
        if (code := sup.wait_for(deploy)) != 0:
            raise ChildExited(f"backoffice deploy failed (exit {code})")
        sup.start(
            "flow runner", [PYTHON, "-m", "prefect", "worker", "start", "--pool", env["BACKOFFICE_WORK_POOL"]]
        )
        _wait_http(sup, f"http://{host}:{port}/healthz", "sidecar")
        typer.echo("\nbackoffice is running. Ctrl-C stops everything.")
        typer.echo(
            "\n".join(
                [
                    *lines,
                    f"  Sidecar API docs    http://{host}:{port}/docs",
                    f"  Dashboard           http://{host}:{port}/",
                ]
            )
        )
        typer.echo(
            "Admin key: start with BACKOFFICE_ADMIN_KEY=<a long secret> set, or create one with\n"
            "  uv run backoffice keys create NAME --role admin"
        )
        while True:
            sup.check()
            reap()
            time.sleep(0.5)
    except Stop:
        typer.echo("\nStopping…")
    except ChildExited as exc:
        typer.echo(f"\nerror: {exc}; stopping everything.", err=True)
        raise typer.Exit(1) from exc
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sup.stop()
        if wrote_url:  # only ours: a second run that failed to start leaves the first one's file
            url_file.unlink(missing_ok=True)
        typer.echo("All stopped.")
