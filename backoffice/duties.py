"""The sidecar's periodic duties, done by one sidecar of a database at a time.

Two duties run on timers inside `backoffice api`: the Enabled reconciliation (Prefect made to
match our records, operators' Prefect toggles adopted: `backoffice.jobs.sync.reconcile`) and the
sweep of run-out task locks (`backoffice.queue.sweeper`). Several sidecars on one PostgreSQL
database (every uvicorn worker process of every `backoffice api` takes part) elect who does them
with a session-level advisory lock held on a connection of its own: when that sidecar dies, its
connection closes, PostgreSQL frees the lock and the next standby to try (every period) takes over.
On SQLite the one sidecar does them. `BACKOFFICE_RECONCILE=off` keeps a sidecar out of the
election, so it does neither duty (its lock calls still sweep their own task type).

The lock saves work; it is not what keeps the duties correct: a reconciliation pass writes by
compare and set and concurrent sweeps split the rows, so two passes at once (a leader that lost
its connection mid-pass) are harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from backoffice.db import is_sqlite, normalize_url
from backoffice.errors import BackofficeError
from backoffice.jobs.catalog import load_catalog
from backoffice.jobs.store import JobRecordStore
from backoffice.jobs.sync import reconcile
from backoffice.queue import sweeper
from backoffice.queue.store import TaskStore
from backoffice.settings import Settings

log = logging.getLogger(__name__)

# pg_try_advisory_lock's key for "the periodic duties of this database" ('bkoffdut' in ASCII).
# Advisory locks are per database, so sidecars of other databases on the same server do not compete.
DUTIES_LOCK_KEY = 0x626B6F6666647574
RECONCILER_THREAD = "job-reconciler"


class Leadership(Protocol):
    """Who does the duties: `holds()` is asked before every pass, `release()` on shutdown."""

    def holds(self) -> bool:
        """True when this process should do the duties now."""
        ...

    def release(self) -> None:
        """Give the duties up (another sidecar takes them on its next try)."""
        ...


class SoleLeadership:
    """SQLite: one sidecar per database file, so it always does the duties."""

    def holds(self) -> bool:
        """Always."""
        return True

    def release(self) -> None:
        """Nothing to give up."""


class AdvisoryLeadership:
    """PostgreSQL: holds `pg_try_advisory_lock(DUTIES_LOCK_KEY)` on a dedicated connection.

    The connection is not from the pool (a pooled connection would carry the lock to other work
    and outlive a failure unnoticed). While holding, every `holds()` pings it: a connection that
    broke took the lock with it, so this process stops and tries again like any standby.
    """

    def __init__(self, url: str, connect_timeout: int) -> None:
        self._engine: Engine = create_engine(
            normalize_url(url),
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            # Keepalives: a leader whose database vanished from the network learns it within a
            # minute instead of waiting on a dead socket.
            connect_args={
                # Names the holder in pg_stat_activity: which sidecar does the duties is one query away.
                "application_name": f"backoffice-duties pid={os.getpid()}",
                "connect_timeout": connect_timeout,
                "keepalives": 1,
                "keepalives_idle": 30,
                "keepalives_interval": 10,
                "keepalives_count": 3,
            },
        )
        self._conn: Connection | None = None
        self._held = False
        self._lock = threading.Lock()  # the duty threads share one connection

    def holds(self) -> bool:
        """Keep or try to take the lock; False (and retried next time) when the database is away."""
        with self._lock:
            try:
                if self._conn is None:
                    self._conn, self._held = self._engine.connect(), False
                if self._held:
                    self._conn.execute(text("SELECT 1"))
                    return True
                taken = self._conn.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": DUTIES_LOCK_KEY}
                ).scalar_one()
                self._held = bool(taken)
                if self._held:
                    log.info("this sidecar now does the periodic duties (reconciliation, lock sweep)")
                return self._held
            except SQLAlchemyError as exc:
                if self._held:
                    log.warning("lost the duties lock's connection: %s", type(exc).__name__)
                self._drop()
                return False

    def release(self) -> None:
        """Close the connection, which frees the lock at once."""
        with self._lock:
            self._drop()
        self._engine.dispose()

    def _drop(self) -> None:
        if self._conn is not None:
            # A broken connection fails to close too: dropping it is all that was left to do.
            with contextlib.suppress(SQLAlchemyError):
                self._conn.close()
        self._conn, self._held = None, False


def leadership_for(settings: Settings) -> Leadership:
    """The election that fits the settings' database."""
    if is_sqlite(settings.database_url):
        return SoleLeadership()
    return AdvisoryLeadership(settings.database_url, settings.db_connect_timeout_seconds)


class PeriodicDuty:
    """A daemon thread that calls `work()` every `interval` seconds while `leadership` holds.

    The first pass comes one interval after start. A failing pass is logged and the timer goes on.
    """

    def __init__(self, name: str, interval: float, work: Callable[[], None], leadership: Leadership) -> None:
        self.name = name
        self.interval = interval
        self.work = work
        self.leadership = leadership
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the timer."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for a pass under way to finish."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.leadership.holds():
                continue
            try:
                self.work()
            except Exception:  # one bad pass must not stop the timer
                log.exception("%s: the pass failed; next try in %.0f s", self.name, self.interval)


def reconcile_jobs(engine: Engine) -> None:
    """One Enabled reconciliation pass; an unreachable Prefect is logged and waited out."""
    try:
        # What a pass adopts from Prefect is logged by the pass itself (backoffice.jobs.sync).
        asyncio.run(reconcile(JobRecordStore(engine), load_catalog()))
    except BackofficeError as exc:  # PrefectUnavailable, a refused change: the next pass retries
        log.warning("reconciliation skipped: %s", exc.message)


class Duties:
    """The sidecar's timers and their shared election; `start()`, and `stop()` on shutdown."""

    def __init__(self, leadership: Leadership, timers: list[PeriodicDuty]) -> None:
        self.leadership = leadership
        self.timers = timers

    def start(self) -> None:
        """Start every timer."""
        for timer in self.timers:
            timer.start()

    def stop(self) -> None:
        """Stop every timer, then give up the duties so another sidecar takes them at once."""
        for timer in self.timers:
            timer.stop()
        self.leadership.release()


def sidecar_duties(settings: Settings, engine: Engine, tasks: TaskStore) -> Duties:
    """The duties of one `backoffice api` process (none with `BACKOFFICE_RECONCILE=off`)."""
    if not settings.reconcile:
        return Duties(SoleLeadership(), [])
    leadership = leadership_for(settings)
    return Duties(
        leadership,
        [
            PeriodicDuty(
                RECONCILER_THREAD,
                settings.reconcile_interval_seconds,
                lambda: reconcile_jobs(engine),
                leadership,
            ),
            PeriodicDuty(
                sweeper.THREAD_NAME,
                settings.sweep_interval_seconds,
                lambda: sweeper.sweep_run_out_locks(tasks),
                leadership,
            ),
        ],
    )
