"""`GET /metrics` in the Prometheus text format (prometheus-client).

What is counted where, and why:

- Task gauges (`backoffice_tasks{task_type,status}`, `backoffice_task_oldest_pending_age_seconds`)
  are read from the database at scrape time (TaskStore.type_stats, the same read as
  `GET /api/task-types`), so every sidecar process reports the same system-wide numbers.
- The lock/completion/failure/lock-expiry counters are the totals of the matching audit events in
  `task_events` (`locked`, `completed`, `failed`, `lock_expired`), not in-process counters. The
  queue is served by several processes (uvicorn workers, several sidecars, the CLI) and a scrape
  reaches one of them; in-process counters would each see a slice and restart at zero. The audit
  table is written in the same transaction as every change and never loses rows, so these totals
  are exact, monotonic across restarts and equal whichever process answers. They are read
  incrementally (backoffice/queue/event_counts.py). A batch lock of n tasks counts n locks;
  `failed` counts every fail call (retried or dead-lettered) and every dead-letter by the sweeper.
- The HTTP request duration histogram is the one in-process metric (durations exist only in the
  process that served the request); its `route` label is the route template
  (`/api/tasks/{task_id}`), never the raw path, and `unmatched` for paths no route matched; its
  `method` label is `other` for any method outside the standard seven. Clients cannot add series.
- The task gauges' GROUP BY reads the whole tasks table, so a process reuses its result for
  STATS_CACHE_SECONDS: a scrape every second costs one such read per few seconds.
- Per job (`backoffice_job_*`): read from Prefect at scrape time through the jobs status module
  (the code behind `GET /api/jobs`). When Prefect or the database is unreachable the scrape still
  answers, with `backoffice_prefect_up 0` / `backoffice_database_up 0` and without those series.

- Held / waited histograms and failures by kind (`backoffice_task_held_seconds`,
  `backoffice_task_waited_seconds`, `backoffice_task_failures_by_kind`) are read from the details of
  the `completed` / `failed` events the same incremental way (backoffice/queue/timing.py).
  Undelivered result callbacks (`backoffice_callbacks_undelivered`) are counted in the outbox at
  scrape time.

`/metrics` needs no key, like `/healthz`: it shows counts and names, no task data.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, Request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backoffice.errors import BackofficeError, PrefectUnavailable
from backoffice.jobs.status import JobStatus
from backoffice.queue.records import TypeStats
from backoffice.queue.timing import BUCKETS as TIMING_BUCKETS
from backoffice.queue.timing import FAILURES, Histograms, TimingHistograms
from task_queue_api.context import AppContext

log = logging.getLogger(__name__)

STATUSES = ("pending", "locked", "expired", "completed", "failed")
EVENT_COUNTERS = {
    "locked": ("backoffice_task_locks", "Tasks handed to a locker (each task of a batch lock counts)."),
    "completed": ("backoffice_task_completions", "Tasks completed."),
    "failed": ("backoffice_task_failures", "Failures reported by workers, and dead-letters by lock expiry."),
    "lock_expired": ("backoffice_task_lock_expiries", "Locks that ran out and were swept."),
}
# A last run in one of these states has finished; a running or pending one says nothing yet.
FINAL_STATE_TYPES = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Any other method a client sends is counted as "other": the label's values stay a fixed set.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
STATS_CACHE_SECONDS = 5.0

router = APIRouter(tags=["health"])


def new_request_histogram() -> Histogram:
    """The request duration histogram of one app (not in the global registry: tests build many apps)."""
    return Histogram(
        "backoffice_http_request_duration_seconds",
        "Time to answer an HTTP request, by method, route template and status code.",
        ["method", "route", "status"],
        buckets=DURATION_BUCKETS,
        registry=None,
    )


class RequestTimer:
    """ASGI middleware observing each request's duration under its route template."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The router stores the matched route in the scope: its path is the template.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            self.histogram.labels(method, route, str(status)).observe(time.perf_counter() - started)


class StatsCache:
    """The last task stats this process read, reused for STATS_CACHE_SECONDS (thread-safe)."""

    def __init__(self, max_age_seconds: float = STATS_CACHE_SECONDS) -> None:
        self.max_age = max_age_seconds
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._stats: list[TypeStats] = []

    def get(self, read: Callable[[], list[TypeStats]]) -> list[TypeStats]:
        """The cached stats while fresh, else `read()`'s (a failed read is not cached)."""
        # One lock: scrapes arriving together share one read instead of each running it.
        with self._lock:
            now = time.monotonic()
            if self._read_at is None or now - self._read_at >= self.max_age:
                self._stats = read()
                self._read_at = now
            return self._stats


@dataclass
class Snapshot:
    """Everything one scrape reports besides the histogram, read before rendering."""

    database_up: bool = True
    stats: list[TypeStats] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)
    callbacks: dict[str, int] = field(default_factory=dict)
    timing: Histograms = field(default_factory=dict)
    prefect_up: bool | None = None
    jobs: list[JobStatus] = field(default_factory=list)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


class SnapshotCollector(Collector):
    """Turns a Snapshot into metric families."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        s = self.snapshot
        yield _gauge(
            "backoffice_database_up", "1 when the database answered this scrape.", int(s.database_up)
        )
        if s.database_up:
            yield from _task_metrics(s)
        if s.prefect_up is not None:
            yield _gauge(
                "backoffice_prefect_up", "1 when the Prefect API answered this scrape.", int(s.prefect_up)
            )
        yield from job_metrics(s.jobs, s.now)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _task_metrics(s: Snapshot) -> Iterator[Metric]:
    tasks = GaugeMetricFamily(
        "backoffice_tasks",
        "Tasks by type and status (expired: the lock ran out).",
        labels=["task_type", "status"],
    )
    age = GaugeMetricFamily(
        "backoffice_task_oldest_pending_age_seconds",
        "Age of the oldest pending task per type (0 when none is pending).",
        labels=["task_type"],
    )
    for st in s.stats:
        for status in STATUSES:
            tasks.add_metric([st.task_type, status], getattr(st, status))
        oldest = st.oldest_pending_at
        age.add_metric([st.task_type], max((s.now - oldest).total_seconds(), 0.0) if oldest else 0.0)
    yield tasks
    yield age
    for event, (name, doc) in EVENT_COUNTERS.items():
        yield CounterMetricFamily(name, doc, value=s.events.get(event, 0))
    undelivered = GaugeMetricFamily(
        "backoffice_callbacks_undelivered",
        "Result callbacks not delivered: pending (retrying) or failed (attempts used up).",
        labels=["state"],
    )
    for state in ("pending", "failed"):
        undelivered.add_metric([state], s.callbacks.get(state, 0))
    yield undelivered
    yield from timing_metrics(s.timing)


def timing_metrics(timing: Histograms) -> Iterator[Metric]:
    """Histograms of held and waited seconds by task type (backoffice/queue/timing.py)."""
    docs = {
        "held": "Seconds a task was held, lock to completion or failure (each attempt).",
        "waited": "Seconds a task waited, creation or not_before to its first lock (once per task).",
    }
    failures = CounterMetricFamily(
        "backoffice_task_failures_by_kind",
        "Failures by task type and error kind (execution, validation, timeout, system).",
        labels=["task_type", "error_kind"],
    )
    for (kind, key), dist in sorted(timing.items()):
        if kind == FAILURES:
            failures.add_metric(key.split("|", 1), dist.count)
    yield failures
    for measure, doc in docs.items():
        family = HistogramMetricFamily(f"backoffice_task_{measure}_seconds", doc, labels=["task_type"])
        for (kind, task_type), dist in sorted(timing.items()):
            if kind != measure:
                continue
            buckets = [(repr(bound), n) for bound, n in zip(TIMING_BUCKETS, dist.buckets, strict=True)]
            family.add_metric([task_type], [*buckets, ("+Inf", dist.count)], sum_value=dist.total)
        yield family


def job_metrics(jobs: list[JobStatus], now: datetime) -> Iterator[Metric]:
    """Per job: enabled, running, last run success and duration, seconds until the next run."""
    labels = ["job_id"]
    enabled = GaugeMetricFamily(
        "backoffice_job_enabled", "1 when the job is enabled (not paused).", labels=labels
    )
    running = GaugeMetricFamily(
        "backoffice_job_running", "1 while a run of the job is running.", labels=labels
    )
    success = GaugeMetricFamily(
        "backoffice_job_last_run_success",
        "1 when the job's last finished run completed, 0 when it failed, crashed or was cancelled.",
        labels=labels,
    )
    duration = GaugeMetricFamily(
        "backoffice_job_last_run_duration_seconds", "Duration of the job's last finished run.", labels=labels
    )
    until_next = GaugeMetricFamily(
        "backoffice_job_seconds_until_next_run",
        "Seconds until the job's next scheduled run (negative: overdue); absent when none is scheduled.",
        labels=labels,
    )
    for job in jobs:
        enabled.add_metric([job.id], int(job.enabled))
        running.add_metric([job.id], int(job.running_now))
        last = job.last_run
        if last is not None and last.state_type in FINAL_STATE_TYPES:
            success.add_metric([job.id], int(last.state_type == "COMPLETED"))
            if last.duration_seconds is not None:
                duration.add_metric([job.id], last.duration_seconds)
        if job.next_run_at is not None:
            until_next.add_metric([job.id], (job.next_run_at - now).total_seconds())
    yield from (enabled, running, success, duration, until_next)


def read_queue(app: FastAPI, snapshot: Snapshot) -> None:
    """Fill the task part of a snapshot (blocking: run it in a thread)."""
    ctx: AppContext = app.state.ctx
    try:
        cache: StatsCache = app.state.stats_cache
        snapshot.stats = cache.get(ctx.tasks.type_stats)
        snapshot.events = ctx.event_counts.totals()
        if ctx.callbacks is not None:
            snapshot.callbacks = ctx.callbacks.undelivered()
        if getattr(app.state, "timing", None) is None:
            app.state.timing = TimingHistograms(ctx.engine)
        snapshot.timing = app.state.timing.read()
    except (SQLAlchemyError, BackofficeError) as exc:
        log.warning("metrics: database unavailable (%s)", type(exc).__name__)
        snapshot.database_up = False


async def read_jobs(app: FastAPI, snapshot: Snapshot) -> None:
    """Fill the job part of a snapshot from the jobs status (the code behind GET /api/jobs)."""
    if not snapshot.database_up:
        return  # the Enabled records live in the database
    ctx: AppContext = app.state.ctx
    try:
        snapshot.jobs = await ctx.jobs.list()
        snapshot.prefect_up = True
    except PrefectUnavailable as exc:
        log.warning("metrics: %s", exc.message)
        snapshot.prefect_up = False
    except Exception:  # a scrape reports what it has; Prefect's part is marked down
        log.exception("metrics: reading the jobs from Prefect failed")
        snapshot.prefect_up = False


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(request: Request) -> Response:
    """Prometheus metrics: tasks, queue counters, request durations, jobs (no key needed)."""
    import anyio.to_thread

    app: FastAPI = request.app
    snapshot = Snapshot()
    await anyio.to_thread.run_sync(read_queue, app, snapshot)
    await read_jobs(app, snapshot)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(app.state.request_histogram)
    registry.register(SnapshotCollector(snapshot))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI) -> None:
    """Time every request and serve `/metrics`."""
    # The *_created series double every histogram line and no dashboard of ours reads them.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    app.state.request_histogram = new_request_histogram()
    app.state.stats_cache = StatsCache()
    app.add_middleware(RequestTimer, histogram=app.state.request_histogram)
    app.include_router(router)
