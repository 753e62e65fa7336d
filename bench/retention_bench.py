"""Retention benchmark on PostgreSQL: delete 1M completed tasks while lock calls run.

    uv run python bench/retention_bench.py [--server URL] [--rows 1000000] [--baseline-seconds 10]

Prints one JSON line per figure (see bench/README.md): lock p50/p99 without the purge, the same
while `run_retention` deletes `--rows` completed tasks, and the purge's duration and rate. It
works in a scratch database it re-creates (`backoffice_bench_retention`), never in another one.
The purge runs in its own process; lock + complete calls run in this one, one task at a time,
through the task store, on pending tasks of another type (the purge must not slow them down).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backoffice.db import create_db_engine  # noqa: E402
from backoffice.migrate import upgrade  # noqa: E402
from backoffice.queue.retention import run_retention  # noqa: E402
from backoffice.queue.store import TaskStore  # noqa: E402
from backoffice.settings import Settings  # noqa: E402

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE = "backoffice_bench_retention"
PENDING = 200_000  # more than the lock loop can drain in a run


def emit(**figure: Any) -> None:
    """One JSON line per figure."""
    print(json.dumps(figure), flush=True)


def recreate(server: str) -> str:
    """Drop and create the scratch database, migrated; its URL."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    url = make_url(server).set(database=DATABASE).render_as_string(hide_password=False)
    upgrade(url)
    return url


def seed(url: str, rows: int) -> None:
    """`rows` completed tasks finished 60 days ago (past the 30-day default) and PENDING pending ones."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO tasks (id, task_type, data, status, priority, available_at, attempts, max_attempts,
                               completed_date, completed_by, version, created_at, created_by,
                               updated_at, updated_by)
            SELECT gen_random_uuid(), 'Old', '{}'::jsonb, 'completed', 0, now() - interval '61 days', 1, 5,
                   now() - interval '60 days', 'w', 3, now() - interval '61 days', 'bench',
                   now() - interval '60 days' + g * interval '1 millisecond', 'w'
            FROM generate_series(1, %s) AS g
            """,
            (rows,),
        )
        conn.execute(
            """
            INSERT INTO tasks (id, task_type, data, status, priority, available_at, attempts, max_attempts,
                               version, created_at, created_by, updated_at, updated_by)
            SELECT gen_random_uuid(), 'Live', '{}'::jsonb, 'pending', 0, now() - interval '1 hour', 0, 5,
                   1, now() - interval '1 hour', 'bench', now() - interval '1 hour', 'bench'
            FROM generate_series(1, %s)
            """,
            (PENDING,),
        )
        conn.execute("VACUUM ANALYZE tasks")


def lock_loop(url: str, stop: threading.Event, latencies: list[float]) -> None:
    """Lock one `Live` task and complete it, again and again, timing each lock call."""
    settings = Settings(database_url=url)
    engine = create_db_engine(settings)
    store = TaskStore(engine, settings)
    try:
        while not stop.is_set():
            started = time.perf_counter()
            (task,) = store.lock("Live", "bench", limit=1)
            latencies.append(time.perf_counter() - started)
            store.complete(task.id, task.lock_token, None, "bench")  # type: ignore[arg-type]
    finally:
        store.close()
        engine.dispose()


def purge(url: str, batch: int, out: Any) -> None:
    """The purge, in its own process: run_retention, then send back (seconds, tasks deleted)."""
    settings = Settings(database_url=url, retention_batch_size=batch)
    engine = create_db_engine(settings)
    out.send("started")  # imports and start-up are done: the measuring window opens now
    started = time.perf_counter()
    report = run_retention(engine, settings)
    out.send((time.perf_counter() - started, report.tasks))
    engine.dispose()


def percentiles(latencies: list[float]) -> dict[str, float]:
    """p50 / p99 / max in milliseconds."""
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "calls": len(latencies),
        "p50_ms": round(cuts[49] * 1000, 2),
        "p99_ms": round(cuts[98] * 1000, 2),
        "max_ms": round(max(latencies) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=DEFAULT_SERVER)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    args = parser.parse_args()

    url = recreate(args.server)
    started = time.perf_counter()
    seed(url, args.rows)
    emit(figure="seed", rows=args.rows, pending=PENDING, seconds=round(time.perf_counter() - started, 1))

    baseline: list[float] = []
    stop = threading.Event()
    worker = threading.Thread(target=lock_loop, args=(url, stop, baseline))
    worker.start()
    time.sleep(args.baseline_seconds)  # a measuring window, not a wait for work
    stop.set()
    worker.join()
    emit(figure="lock_without_purge", **percentiles(baseline))

    during: list[float] = []
    stop = threading.Event()
    worker = threading.Thread(target=lock_loop, args=(url, stop, during))
    receive, send = mp.Pipe(duplex=False)
    process = mp.get_context("spawn").Process(target=purge, args=(url, args.batch, send))
    process.start()
    assert receive.recv() == "started"
    worker.start()
    seconds, deleted = receive.recv()
    process.join()
    stop.set()
    worker.join()
    emit(figure="lock_during_purge", **percentiles(during))
    emit(figure="purge", deleted=deleted, seconds=round(seconds, 1), rows_per_second=round(deleted / seconds))
    emit(
        figure="ratio",
        p99_during_vs_without=round(percentiles(during)["p99_ms"] / percentiles(baseline)["p99_ms"], 2),
    )


if __name__ == "__main__":
    main()
