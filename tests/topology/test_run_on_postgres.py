"""`backoffice run` with BACKOFFICE_DATABASE_URL on PostgreSQL runs its local Prefect server on
PostgreSQL too: a database `<ours>_prefect` on the same server, created when missing."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from backoffice.cli.procs import ChildExited, alive, descendants
from backoffice.cli.run import prefect_database_url
from backoffice.jobs.catalog import PROJECT_DIR, load_catalog
from backoffice.migrate import upgrade
from tests import pg
from tests.helpers import ADMIN_KEY
from tests.servers import free_port
from tests.topology.waits import until

BANNER = "backoffice is running"


@pytest.fixture
def our_database(postgres_server: str) -> Iterator[str]:
    """A throwaway database of ours; it and its `_prefect` sibling are dropped afterwards."""
    name = f"runpg_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = pg.recreate_database(postgres_server, name)
    yield url
    for database in (f"{name}_prefect", name):
        pg.drop_database(postgres_server, database)


def _databases(server: str) -> set[str]:
    with psycopg.connect(server, autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


@pytest.mark.postgres
def test_prefect_database_is_created_beside_ours(our_database: str, postgres_server: str) -> None:
    """Created when missing, left as it is when present; the URL speaks Prefect's driver."""
    ours = make_url(our_database)
    url = make_url(prefect_database_url(f"{our_database}?sslmode=disable"))
    assert url.drivername == "postgresql+asyncpg"
    assert url.database == f"{ours.database}_prefect" and url.host == ours.host and url.port == ours.port
    assert not url.query  # asyncpg takes no libpq options
    assert f"{ours.database}_prefect" in _databases(postgres_server)
    assert make_url(prefect_database_url(our_database)) == url  # present: nothing to do


def test_a_server_that_cannot_be_reached_stops_run_with_a_sentence() -> None:
    """No PostgreSQL to put Prefect's database on: `backoffice run` stops, saying what to do."""
    with pytest.raises(ChildExited, match="could not find or create Prefect's database db_prefect"):
        prefect_database_url(f"postgresql://postgres@127.0.0.1:{free_port()}/db")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(900)
def test_run_puts_prefect_on_postgres(our_database: str, postgres_server: str, tmp_path: Path) -> None:
    """The whole `backoffice run` on PostgreSQL: Prefect's tables land in `<ours>_prefect`, the catalog
    is deployed there, and Ctrl-C stops everything."""
    upgrade(our_database)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKOFFICE_", "PREFECT_"))}
    env.update(BACKOFFICE_DATABASE_URL=our_database, BACKOFFICE_ADMIN_KEY=ADMIN_KEY, PYTHONUNBUFFERED="1")
    log = tmp_path / "run.log"
    command = [
        sys.executable, "-m", "backoffice.cli", "run", "--data-dir", str(tmp_path / "data"),
        "--port", str(free_port()), "--prefect-port", str(free_port()),
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, cwd=PROJECT_DIR, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:

        def running() -> bool:
            assert process.poll() is None, log.read_text(errors="replace")[-4000:]
            return BANNER in log.read_text(errors="replace")

        until("backoffice run is up", running, timeout=600, every=1)
        name = f"{make_url(our_database).database}_prefect"
        prefect_db = make_url(postgres_server).set(database=name)
        shown = prefect_db.set(drivername="postgresql+asyncpg").render_as_string()
        assert f"Prefect database    {shown}" in log.read_text()
        with psycopg.connect(prefect_db.render_as_string(hide_password=False)) as conn:
            deployed = {row[0] for row in conn.execute("SELECT name FROM deployment")}
        assert deployed == set(load_catalog().ids)
        assert not (tmp_path / "data" / "prefect" / "prefect.db").exists()  # no SQLite beside it

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 0, log.read_text(errors="replace")[-4000:]
        assert "All stopped." in log.read_text()
    finally:
        if process.poll() is None:  # a failure halfway: Ctrl-C, then kill whatever is left
            doomed = descendants(process.pid) | {process.pid}
            process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=60)
            for pid in doomed | descendants(process.pid):
                if alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
