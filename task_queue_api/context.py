"""What the sidecar's routes share: settings, the engine and the stores built on it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from backoffice.duties import Duties, sidecar_duties
from backoffice.errors import DatabaseUnavailable
from backoffice.jobs.control import JobControl
from backoffice.migrate import is_at_head
from backoffice.queue.async_store import HotPath, hot_path_for
from backoffice.queue.callbacks import CallbackDeliverer, CallbackStore, allowed_hosts
from backoffice.queue.event_counts import EventCountStore
from backoffice.queue.keys import KeyStore
from backoffice.queue.listener import TaskListener
from backoffice.queue.records import TaskRecord
from backoffice.queue.store import TaskStore
from backoffice.settings import Settings
from backoffice.warehouse.box_store import TransportBoxStore
from task_queue_api.schemas.tasks import TaskPublic
from task_queue_api.throttle import FailureThrottle


def _task_json(task: TaskRecord) -> dict[str, Any]:
    """A task as GET /api/tasks/{id} returns it (the body of a result callback)."""
    return TaskPublic.of(task).model_dump(mode="json")


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
    duties: Duties
    # The queue's asyncio hot path and its long-poll listener (start_hot_path, in the lifespan).
    hot: HotPath | None = None
    listener: TaskListener | None = None
    # Result callbacks: the outbox and this sidecar's deliverer (started when callbacks are on).
    callbacks: CallbackStore | None = None
    deliverer: CallbackDeliverer | None = None
    _migrated: bool = False
    _checked_at: float = field(default=0.0)
    _problem: tuple[str, str] | None = None

    @classmethod
    def build(cls, settings: Settings, engine: Engine) -> AppContext:
        """Wire the stores for one engine and start the periodic duties (lock sweep, reconciliation)."""
        admin = settings.admin_key.get_secret_value() if settings.admin_key else None
        tasks = TaskStore(engine, settings)
        ctx = cls(
            settings=settings,
            engine=engine,
            keys=KeyStore(engine, admin, settings.key_cache_seconds),
            tasks=tasks,
            event_counts=EventCountStore(engine),
            jobs=JobControl(engine),
            boxes=TransportBoxStore(engine),
            throttle=FailureThrottle.from_settings(settings),
            duties=sidecar_duties(settings, engine, tasks),
        )
        ctx.duties.start()
        ctx.callbacks = CallbackStore(engine, settings)
        ctx.deliverer = CallbackDeliverer(ctx.callbacks, tasks.find, _task_json)
        if allowed_hosts(settings):
            # Every sidecar delivers: claims keep them from sending one delivery twice at once.
            ctx.deliverer.start()
        return ctx

    async def start_hot_path(self) -> None:
        """Open the hot path's pool and start the long-poll listener (on the running event loop)."""
        hot = hot_path_for(self.tasks)
        await hot.open()
        listen_url = None
        if self.tasks.dialect.supports_listen_notify:
            listen_url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        listener = TaskListener(hot.claimable, self.tasks.dialect.poll_seconds, listen_url)
        # PostgreSQL's NOTIFY reaches the listener from every process, this one's writes included;
        # SQLite has only this process's own wake-ups.
        await listener.start(None if listen_url else self.tasks.signals)
        self.hot, self.listener = hot, listener

    async def stop_hot_path(self) -> None:
        """Stop the listener and close the pool."""
        if self.listener is not None:
            await self.listener.close()
        if self.hot is not None:
            await self.hot.close()

    @property
    def migrated(self) -> bool:
        """True once the database was found migrated (then no check does I/O)."""
        return self._migrated

    def close(self) -> None:
        """Stop background helpers (the periodic duties, the LISTEN thread on PostgreSQL)."""
        self.duties.stop()
        if self.deliverer is not None:
            self.deliverer.stop()
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
