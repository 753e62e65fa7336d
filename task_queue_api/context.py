"""What the sidecar's routes share: settings, the engine and the stores built on it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from backoffice.errors import DatabaseUnavailable
from backoffice.jobs.control import JobControl
from backoffice.migrate import is_at_head
from backoffice.queue.event_counts import EventCountStore
from backoffice.queue.keys import KeyStore
from backoffice.queue.store import TaskStore
from backoffice.queue.sweeper import LockSweeper
from backoffice.settings import Settings
from backoffice.warehouse.box_store import TransportBoxStore
from task_queue_api.throttle import FailureThrottle

# How often an unmigrated database is looked at again before refusing a request.
SCHEMA_RECHECK_SECONDS = 2.0


@dataclass
class AppContext:
    """Built once per process in the app's lifespan: every route, page and scrape uses these
    stores (the event counts keep per-process totals, so building one per request would lose them)."""

    settings: Settings
    engine: Engine
    keys: KeyStore
    tasks: TaskStore
    event_counts: EventCountStore
    jobs: JobControl
    boxes: TransportBoxStore
    throttle: FailureThrottle
    sweeper: LockSweeper
    _migrated: bool = False
    _checked_at: float = field(default=0.0)
    _problem: tuple[str, str] | None = None

    @classmethod
    def build(cls, settings: Settings, engine: Engine) -> AppContext:
        """Wire the stores for one engine and start the timer that sweeps run-out locks."""
        admin = settings.admin_key.get_secret_value() if settings.admin_key else None
        tasks = TaskStore(engine, settings)
        ctx = cls(
            settings=settings,
            engine=engine,
            keys=KeyStore(engine, admin),
            tasks=tasks,
            event_counts=EventCountStore(engine),
            jobs=JobControl(engine),
            boxes=TransportBoxStore(engine),
            throttle=FailureThrottle.from_settings(settings),
            sweeper=LockSweeper(tasks, settings.sweep_interval_seconds),
        )
        ctx.sweeper.start()
        return ctx

    def close(self) -> None:
        """Stop background helpers (the sweep timer, the LISTEN thread on PostgreSQL)."""
        self.sweeper.stop()
        self.tasks.close()

    def schema_problem(self) -> tuple[str, str] | None:
        """None when the database answers and is migrated, else (error code, sentence)."""
        try:
            if self._migrated:
                with self.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return None
            self._migrated = is_at_head(self.engine)
        except SQLAlchemyError:
            return ("database_unavailable", "The database cannot be reached; retry shortly.")
        if not self._migrated:
            return (
                "database_not_migrated",
                "The database schema is not the newest; run `backoffice db upgrade`.",
            )
        return None

    def ensure_migrated(self) -> None:
        """Refuse to serve (503) while the database is not migrated to the newest schema."""
        if self._migrated:
            return
        now = time.monotonic()
        if self._problem is None or now - self._checked_at >= SCHEMA_RECHECK_SECONDS:
            self._checked_at = now
            self._problem = self.schema_problem()
        if self._problem is not None:
            raise DatabaseUnavailable(self._problem[1], code=self._problem[0])
