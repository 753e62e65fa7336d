"""The database goes away under load (PostgreSQL): requests fail fast with 503
`database_unavailable` + Retry-After (never a 500, never a hang), the sidecar recovers by
itself, and every task is still completed exactly once.

Killed connections hit the test database's own backends only (pg_terminate_backend from an
admin connection). The restart test restarts a throwaway cluster of its own, never the
machine's shared server.
"""

from __future__ import annotations

import os
import pwd
import shlex
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from backoffice.db import create_db_engine, normalize_url
from backoffice.migrate import upgrade
from backoffice.settings import Settings
from tests import pg
from tests.helpers import ADMIN, ADMIN_KEY
from tests.integration.queue_checks import (
    Drainers,
    assert_exactly_once,
    consumer_key,
    seed_tasks,
    task_counts,
)
from tests.sidecar import Sidecar

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TYPE = "EshopExport"
# Short leases: a task whose lock answer was lost (a 503 after the commit) comes back soon.
LEASE = "3"
TASKS = 2000
IDLE_EXIT = "6"


def pg_settings(url: str) -> Settings:
    """Settings for a sidecar on `url` with the bootstrap admin key."""
    return Settings(database_url=url, admin_key=ADMIN_KEY)  # type: ignore[arg-type]


@pytest.fixture
def pg_url(postgres_database: str) -> str:
    """The worker's PostgreSQL test database, emptied."""
    engine = create_db_engine(pg_settings(postgres_database))
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE tasks, task_events, api_keys"))
    engine.dispose()
    return postgres_database


def assert_outage_handled(seen: dict[str, Any]) -> None:
    """Every failed answer was a 503 database_unavailable with Retry-After; no 500, no hang."""
    assert seen["unexpected"] == []
    assert seen["unavailable"] > 0, "the outage never reached a request; the test proved nothing"
    # A retried completion whose first try was committed answers already_completed; a worker
    # whose lease ran out while it retried is fenced off (lock_lost). Nothing else.
    assert {code for _, code in seen["conflicts"]} <= {"already_completed", "lock_lost"}
    completed = Counter(seen["completed"])
    assert set(completed.values()) <= {1}


def wait_for_progress(engine: Engine, done: int, timeout: float = 120) -> None:
    """Block until at least `done` tasks are completed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if task_counts(engine, TYPE).get("completed", 0) >= done:
                return
        except OperationalError:
            pass  # our own connection was killed too; the pool replaces it
        assert time.monotonic() < deadline, "the drain made no progress"
        time.sleep(0.1)


def unavailable_answers(sidecar_url: str) -> int:
    """How many queue requests the sidecar has answered 503 so far (its /metrics histogram)."""
    text = httpx.get(f"{sidecar_url}/metrics", timeout=30).text
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("backoffice_http_request_duration_seconds_count{")
        and 'status="503"' in line
        and 'route="/api/tasks' in line
    )


# The test's own connections (feeding tasks, counting) carry this name and are never killed.
FEEDER = "outage-test-feeder"


def test_killed_connections_during_load(pg_url: str, tmp_path: Path) -> None:
    """pg_terminate_backend on every backend of the sidecar, again and again, mid-drain.

    The kills go on until a drain request has met one (the sidecar counted a 503), and the queue
    is topped up meanwhile, so a fast machine cannot finish the drain before the outage reaches it.
    """
    settings = pg_settings(pg_url)
    feeder = create_engine(normalize_url(pg_url), connect_args={"application_name": FEEDER})
    ids = seed_tasks(feeder, TASKS, TYPE)
    database = make_url(pg_url).database
    admin_url = make_url(pg_url).set(database="postgres").render_as_string(hide_password=False)
    killed = 0
    try:
        with Sidecar(settings, log_path=tmp_path / "sidecar.log") as sidecar:
            key = consumer_key(sidecar.url, "drainer", TYPE)
            with Drainers(sidecar.url, key, TYPE, tmp_path, 2, 8, LEASE, IDLE_EXIT) as drainers:
                wait_for_progress(feeder, TASKS // 10)
                deadline = time.monotonic() + 240
                with psycopg.connect(admin_url, autocommit=True) as admin:
                    while killed == 0 or unavailable_answers(sidecar.url) == 0:
                        assert time.monotonic() < deadline, "no kill reached a request in 240 s"
                        if task_counts(feeder, TYPE).get("pending", 0) < TASKS // 2:
                            ids += seed_tasks(feeder, TASKS // 2, TYPE)
                        rows = admin.execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = %s AND pid <> pg_backend_pid() AND application_name <> %s",
                            (database, FEEDER),
                        ).fetchall()
                        killed += len(rows)
                        time.sleep(0.05)
                seen = drainers.collect(timeout=300)
            # Recovered by itself: ready again, and serving.
            assert httpx.get(f"{sidecar.url}/readyz", timeout=30).status_code == 200
            assert httpx.get(f"{sidecar.url}/api/task-types", headers=ADMIN, timeout=30).status_code == 200
        assert_outage_handled(seen)
        assert_exactly_once(feeder, TYPE, ids)
    finally:
        feeder.dispose()


class ThrowawayCluster:
    """A PostgreSQL cluster of this test's own (tests/pg.py starts it), to stop and start."""

    def __init__(self) -> None:
        self.url = pg._start_throwaway_cluster()
        with psycopg.connect(self.url) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
        assert row is not None
        self.datadir = str(row[0])
        self.run_as: list[str] = []
        if os.geteuid() == 0:
            self.run_as = ["runuser", "-u", pwd.getpwuid(os.stat(self.datadir).st_uid).pw_name, "--"]
        # What `pg_ctl start` was given (postmaster.opts: the binary, then its arguments).
        postgres, *opts = shlex.split(Path(self.datadir, "postmaster.opts").read_text())
        self.bindir = os.path.dirname(postgres)
        d = opts.index("-D")
        self.options = shlex.join(opts[:d] + opts[d + 2 :])

    def pg_ctl(self, *args: str) -> None:
        """Run pg_ctl on the cluster as its owner."""
        subprocess.run([*self.run_as, f"{self.bindir}/pg_ctl", "-D", self.datadir, "-w", *args], check=True)

    def stop(self) -> None:
        """Stop at once, cutting every connection (fast shutdown)."""
        self.pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        """Start again with the original options."""
        self.pg_ctl("-l", f"{self.datadir}/log", "-o", self.options, "start")


@pytest.fixture
def cluster() -> Iterator[ThrowawayCluster]:
    """A throwaway cluster, stopped at exit by tests/pg.py."""
    yield ThrowawayCluster()


def test_database_restart_during_load(cluster: ThrowawayCluster, tmp_path: Path) -> None:
    """The database stops mid-drain and comes back: 503s meanwhile, then the drain finishes."""
    url = pg.recreate_database(cluster.url, "backoffice_outage")
    upgrade(url)
    settings = pg_settings(url)
    engine = create_db_engine(settings)
    ids = seed_tasks(engine, TASKS, TYPE)
    try:
        with Sidecar(settings, log_path=tmp_path / "sidecar.log") as sidecar:
            key = consumer_key(sidecar.url, "drainer", TYPE)
            with Drainers(sidecar.url, key, TYPE, tmp_path, 2, 8, LEASE, IDLE_EXIT) as drainers:
                wait_for_progress(engine, TASKS // 10)
                cluster.stop()
                try:
                    down = httpx.post(
                        f"{sidecar.url}/api/tasks/lock", json={"task_type": TYPE}, headers=ADMIN, timeout=30
                    )
                    assert down.status_code == 503
                    assert down.json()["error"] == "database_unavailable"
                    assert down.headers["retry-after"]
                    ready = httpx.get(f"{sidecar.url}/readyz", timeout=30)
                    assert ready.status_code == 503 and ready.json()["error"] == "database_unavailable"
                    time.sleep(2)  # the workers keep hitting the dead database meanwhile
                finally:
                    cluster.start()
                seen = drainers.collect(timeout=300)
            assert httpx.get(f"{sidecar.url}/readyz", timeout=30).status_code == 200
        assert_outage_handled(seen)
        engine.dispose()  # its connections died with the server
        assert_exactly_once(engine, TYPE, ids)
    finally:
        engine.dispose()
