"""The production topology as separate processes, started with the README's production commands.

    with System.start(tmp_path) as system:   # PG databases, Prefect server on PG, fakes, …
        system.sidecars[0].url, system.workers, system.prefect_api

Every process runs in a session of its own; `close()` SIGKILLs each one's process group and
everything below it (flow runs included), even when the test failed halfway, then drops the
throwaway databases.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from backoffice.cli.procs import alive, descendants
from backoffice.duties import DUTIES_LOCK_KEY
from backoffice.integrations.fakes import comgate, shoptet
from backoffice.integrations.fakes.comgate import FakeComgate
from backoffice.integrations.fakes.shoptet import FakeShoptet
from backoffice.jobs.catalog import PROJECT_DIR
from tests import pg
from tests.helpers import ADMIN_KEY
from tests.servers import ThreadedServer, free_port
from tests.topology.waits import until

PYTHON = sys.executable
BACKOFFICE = [PYTHON, "-m", "backoffice.cli"]
WORK_POOL = "backoffice-production"  # what deployments/production.env names
# Sidecars reconcile every 5 s here (30 s in production): the checks wait less, nothing else changes.
RECONCILE_SECONDS = "5"
STARTUP_SECONDS = 240.0


@dataclass
class Process:
    """One started process, its log file and its name."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def output(self) -> str:
        """What it printed so far."""
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL its process group and everything below it (what a dead host leaves)."""
        doomed = descendants(self.popen.pid) | {self.popen.pid}
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        for pid in doomed:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=30)


@dataclass
class System:
    """PostgreSQL databases, a Prefect server on PG, two workers, two sidecars, fake Shoptet/Comgate."""

    tmp: Path
    server: str
    ours: str = ""
    prefect_db: str = ""
    env: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    sidecars: list[Process] = field(default_factory=list)
    workers: list[Process] = field(default_factory=list)
    prefect_api: str = ""
    shoptet: FakeShoptet | None = None
    servers: list[ThreadedServer] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)

    # --- start ------------------------------------------------------------------------------

    def spawn(self, name: str, args: list[str], extra: dict[str, str] | None = None) -> Process:
        """Start `args` in its own session, output to `<tmp>/<name>.log`."""
        log = self.tmp / f"{name}.log"
        out = log.open("wb")
        self._logs.append(out)
        env = {**self.env, **(extra or {})}
        popen = subprocess.Popen(
            args, env=env, cwd=PROJECT_DIR, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def command(self, args: list[str], timeout: float = 300.0) -> str:
        """Run a one-shot command with the system's environment; its output (exit 0 asserted)."""
        done = subprocess.run(
            args, env=self.env, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=timeout, check=False
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{' '.join(args[2:])} failed ({done.returncode}):\n{output[-4000:]}"
        return output

    def wait_http(self, process: Process, url: str) -> None:
        """Wait until `url` answers 2xx, failing at once when `process` died."""

        def answers() -> bool:
            assert process.popen.poll() is None, f"{process.name} exited:\n{process.output()[-4000:]}"
            try:
                return httpx.get(url, timeout=5).is_success
            except httpx.HTTPError:
                return False

        until(f"{process.name} answers at {url}", answers, timeout=STARTUP_SECONDS, every=0.5)

    @classmethod
    def start(cls, tmp: Path) -> System:
        """Start everything; on a failure halfway what started is killed again."""
        system = cls(tmp, pg.server_url())
        try:
            system._start()
        except BaseException:
            system.close()
            raise
        return system

    def _start(self) -> None:
        name = f"topology_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.ours = pg.recreate_database(self.server, name)
        self.prefect_db = pg.recreate_database(self.server, f"{name}_prefect")
        prefect_port = free_port()
        self.prefect_api = f"http://127.0.0.1:{prefect_port}/api"
        self.shoptet = FakeShoptet()
        fake_shoptet, fake_comgate = ThreadedServer(self.shoptet.app), ThreadedServer(FakeComgate().app)
        self.servers = [fake_shoptet, fake_comgate]
        for server in self.servers:
            server.start()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("BACKOFFICE_", "PREFECT_"))}
        self.env = {
            **base,
            "PYTHONUNBUFFERED": "1",
            "BACKOFFICE_DATABASE_URL": self.ours,
            "BACKOFFICE_ADMIN_KEY": ADMIN_KEY,
            "BACKOFFICE_OUTPUT_DIR": str(self.tmp / "output"),
            # production.env names /srv/backoffice-tasks; the environment wins over the file.
            "BACKOFFICE_PROJECT_DIR": str(PROJECT_DIR),
            "BACKOFFICE_WORK_POOL": WORK_POOL,
            "BACKOFFICE_SHOPTET_BASE_URL": fake_shoptet.base_url,
            "BACKOFFICE_SHOPTET_API_TOKEN": shoptet.DEFAULT_TOKEN,
            "BACKOFFICE_COMGATE_BASE_URL": fake_comgate.base_url,
            "BACKOFFICE_COMGATE_MERCHANT": comgate.DEFAULT_MERCHANT,
            "BACKOFFICE_COMGATE_SECRET": comgate.DEFAULT_SECRET,
            "PREFECT_API_URL": self.prefect_api,
            "PREFECT_HOME": str(self.tmp / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        prefect_url = make_url(self.prefect_db).set(drivername="postgresql+asyncpg")
        prefect = self.spawn(
            "prefect-server",
            [PYTHON, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)],
            {"PREFECT_SERVER_DATABASE_CONNECTION_URL": prefect_url.render_as_string(hide_password=False)},
        )
        self.command([*BACKOFFICE, "db", "upgrade"])  # while the Prefect server migrates its own
        self.wait_http(prefect, f"{self.prefect_api}/health")
        for letter in "ab":
            self.workers.append(
                self.spawn(
                    f"worker-{letter}",
                    [
                        PYTHON,
                        "-m",
                        "prefect",
                        "worker",
                        "start",
                        "--pool",
                        WORK_POOL,
                        "--name",
                        f"worker-{letter}",
                    ],
                    # Poll every 2 s instead of 10: runs start sooner, nothing else differs.
                    {"PREFECT_WORKER_QUERY_SECONDS": "2"},
                )
            )
        for letter in "ab":
            port = free_port()
            sidecar = self.spawn(
                f"sidecar-{letter}",
                [*BACKOFFICE, "api", "--host", "127.0.0.1", "--port", str(port)],
                {"BACKOFFICE_RECONCILE_INTERVAL_SECONDS": RECONCILE_SECONDS},
            )
            sidecar.url = f"http://127.0.0.1:{port}"
            self.sidecars.append(sidecar)
        for sidecar in self.sidecars:
            self.wait_http(sidecar, f"{sidecar.url}/readyz")

    # --- look at it ---------------------------------------------------------------------------

    def sql(self, url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of one query on database `url` (plain psycopg: the test's own eyes)."""
        plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(plain, autocommit=True) as conn:
            cursor = conn.execute(query, args)
            return cursor.fetchall() if cursor.description else []

    def duties_holder(self) -> Process | None:
        """The sidecar holding the duties' advisory lock now (from its connection's application_name)."""
        rows = self.sql(
            self.ours,
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
            DUTIES_LOCK_KEY,
        )
        pids = {int(str(name).rsplit("pid=", 1)[-1]) for (name,) in rows}
        # On PostgreSQL `backoffice api` runs one uvicorn worker process per core: any may hold it.
        holders = [s for s in self.sidecars if pids & (descendants(s.popen.pid) | {s.popen.pid})]
        assert len(pids) <= 1 and len(holders) == len(pids), f"lock holders: {rows}"
        return holders[0] if holders else None

    # --- stop ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Kill every process (groups and descendants), stop the fakes, drop the databases."""
        for process in reversed(self.processes):
            process.kill()
        for server in self.servers:
            server.stop()
        for out in self._logs:
            out.close()
        for url in (self.ours, self.prefect_db):
            if url:
                database = make_url(url).database
                assert database
                pg.drop_database(self.server, database)
