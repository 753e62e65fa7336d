"""The benchmark's moving parts: seeding the scratch database, the sidecar, and worker processes.

Each worker builds its own connections, reports `ready`, waits for `go`, works for `seconds`
(or `samples` calls), and puts `(tasks done, lock latencies in seconds)` on `results`.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

TASK_TYPE = "EshopExport"
ROOT = Path(__file__).resolve().parents[1]


# `count` tasks of one status, created a millisecond apart from `start` on, with UUIDv7 ids as
# the product makes them (`store.new_task_id`: the creation time in ms first, then random bits).
INSERT_TASKS = """
INSERT INTO tasks (id, task_type, data, status, priority, available_at, attempts, max_attempts, version,
                   created_at, created_by, updated_at, updated_by, completed_date, completed_by, result)
SELECT CAST(lpad(to_hex(CAST(extract(epoch FROM at) * 1000 AS bigint)), 12, '0')
            || '7' || substr(md5(random()::text), 1, 3)
            || '8' || substr(md5(random()::text), 1, 15) AS uuid),
       %(type)s, jsonb_build_object('n', g), %(status)s, 0, at, 0, 5, 1, at, 'bench', now(), 'bench',
       CASE WHEN %(done)s THEN now() END,
       CASE WHEN %(done)s THEN 'bench' END,
       CASE WHEN %(done)s THEN '{"ok": true}'::jsonb END
FROM generate_series(1, %(count)s) AS g,
     LATERAL (SELECT CAST(%(start)s AS timestamptz) + g * interval '1 ms') AS t (at)
"""


def insert_tasks(conn: psycopg.Connection[Any], status: str, count: int, start: datetime) -> None:
    """INSERT_TASKS on `conn`."""
    done = status == "completed"
    conn.execute(
        INSERT_TASKS, {"type": TASK_TYPE, "status": status, "done": done, "count": count, "start": start}
    )


def seed(url: str, pending: int, finished: int) -> None:
    """Empty the queue, then `finished` completed and `pending` pending tasks, created in that
    order a millisecond apart (INSERT_TASKS); VACUUM ANALYZE, CHECKPOINT."""
    start = datetime.now(UTC) - timedelta(days=1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE tasks, task_events")
        for status, count, first in (("completed", finished, 0), ("pending", pending, finished)):
            if count:
                insert_tasks(conn, status, count, start + timedelta(milliseconds=first))
        conn.execute("VACUUM ANALYZE tasks")
        # The seed's writes flushed now, not by a checkpoint in the middle of a measurement.
        conn.execute("CHECKPOINT")


def _store(url: str) -> Any:
    from backoffice.db import create_db_engine
    from backoffice.queue.store import TaskStore
    from backoffice.settings import Settings

    settings = Settings(database_url=url)
    return TaskStore(create_db_engine(settings), settings)


def storage_worker(url: str, limit: int, seconds: float, ready: Any, go: Any, results: Any) -> None:
    """Lock `limit` tasks and complete them through the storage layer, for `seconds`."""
    store = _store(url)
    store.find(uuid.uuid4())  # open a pooled connection before the clock starts
    ready.put(True)
    go.wait()
    done, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        tasks = store.lock(TASK_TYPE, "bench", limit)
        if limit == 1:
            for t in tasks:
                store.complete(t.id, t.lock_token, {"ok": True}, "bench")
        else:
            store.complete_many([(t.id, t.lock_token, {"ok": True}) for t in tasks], "bench")
        done += len(tasks)
    results.put((done, []))


def latency_worker(
    url_a: str, url_b: str, samples: int, seconds: float, ready: Any, go: Any, results: Any
) -> None:
    """Time `samples` single-task lock calls on each of two databases, alternating, so both
    see the same machine load. Each task is then completed and a new one inserted, untimed: a
    queue keeps its size however many calls are timed (the insert is plain SQL, so no NOTIFY
    wakes this process's own listener in the middle of the next call)."""
    stores = [_store(url_a), _store(url_b)]
    for store in stores:
        for _ in range(20):  # warm the pool and the prepared statements
            for t in store.lock(TASK_TYPE, "bench", 1):
                store.complete(t.id, t.lock_token, {"ok": True}, "bench")
    refills = [psycopg.connect(url, autocommit=True) for url in (url_a, url_b)]
    ready.put(True)
    go.wait()
    latencies: list[list[float]] = [[], []]
    for _ in range(samples):
        for store, refill, timings in zip(stores, refills, latencies, strict=True):
            start = time.perf_counter()
            tasks = store.lock(TASK_TYPE, "bench", 1)
            timings.append(time.perf_counter() - start)
            for t in tasks:
                store.complete(t.id, t.lock_token, {"ok": True}, "bench")
            insert_tasks(refill, "pending", 1, datetime.now(UTC))
    for refill in refills:
        refill.close()
    results.put((samples, latencies))


class RawHttp:
    """A minimal keep-alive HTTP/1.1 client for the throughput figures: the server is what is
    measured, and on a 2-core machine httpx's own CPU (about 0.5 ms a request, measured) would
    be taken from it; pgbench's clients are C. Requests with a JSON body; answers must carry a
    Content-Length (the sidecar's JSON answers do)."""

    def __init__(self, base_url: str, key: str) -> None:
        host, port = base_url.removeprefix("http://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.head = f"Host: {host}\r\nx-functions-key: {key}\r\ncontent-type: application/json\r\n"
        self.buffer = b""

    def post(self, path: str, body: Any) -> Any:
        """POST `body` as JSON; the decoded answer (any status but 200 raises)."""
        raw = json.dumps(body).encode()
        request = f"POST {path} HTTP/1.1\r\n{self.head}content-length: {len(raw)}\r\n\r\n"
        self.sock.sendall(request.encode() + raw)
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        fields = dict(line.split(":", 1) for line in lines[1:])
        length = int(next(v for k, v in fields.items() if k.lower() == "content-length"))
        while len(self.buffer) < length:
            self._read()
        answer, self.buffer = self.buffer[:length], self.buffer[length:]
        if lines[0].split()[1] != "200":
            raise RuntimeError(f"{path}: {lines[0]} {answer[:300]!r}")
        return json.loads(answer)

    def _read(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()


def http_worker(
    base_url: str, key: str, limit: int, seconds: float, ready: Any, go: Any, results: Any
) -> None:
    """Lock `limit` tasks per call over HTTP and complete them (one call each, or one batch)."""
    client = RawHttp(base_url, key)
    _drain(client, limit)  # connected, the key cached
    ready.put(True)
    go.wait()
    done, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        done += _drain(client, limit)
    client.close()
    results.put((done, []))


def _drain(client: RawHttp, limit: int) -> int:
    """One lock call for `limit` tasks, then their completion (one call each, or one batch)."""
    items = client.post("/api/tasks/lock", {"task_type": TASK_TYPE, "limit": limit})["items"]
    if limit == 1:
        for t in items:
            client.post(
                f"/api/tasks/{t['id']}/complete", {"lock_token": t["lock_token"], "result": {"ok": True}}
            )
    elif items:
        batch = [{"id": t["id"], "lock_token": t["lock_token"], "result": {"ok": True}} for t in items]
        client.post("/api/tasks/complete", {"items": batch})
    return len(items)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def sidecar(url: str, workers: int) -> Iterator[tuple[str, str, str, int]]:
    """`backoffice api --workers N` on the scratch database; yields (base URL, a consumer key,
    the admin key, the server's pid)."""
    port, admin = _free_port(), secrets.token_urlsafe(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKOFFICE_")}
    # As a high-rate production sidecar would run (README): no access log line per request.
    env.update(BACKOFFICE_DATABASE_URL=url, BACKOFFICE_ADMIN_KEY=admin, BACKOFFICE_ACCESS_LOG="off")
    cli = Path(sys.executable).parent / "backoffice"
    command = [str(cli), "api", "--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the sidecar did not start")
            time.sleep(0.2)
        body = {"name": "bench-worker", "role": "consumer", "task_types": [TASK_TYPE]}
        created = httpx.post(f"{base}/api/keys", json=body, headers={"x-functions-key": admin})
        created.raise_for_status()
        yield base, created.json()["key"], admin, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def http_latency_worker(
    base_url: str, key: str, samples: int, seconds: float, ready: Any, go: Any, results: Any
) -> None:
    """Time `samples` lock(1) + complete pairs over HTTP, one client: the stack's latency."""
    client = RawHttp(base_url, key)
    for _ in range(20):  # warm the key cache, the pool and the prepared statements
        _drain(client, 1)
    ready.put(True)
    go.wait()
    timings = []
    for _ in range(samples):
        start = time.perf_counter()
        _drain(client, 1)
        timings.append(time.perf_counter() - start)
    client.close()
    results.put((samples, timings))


def psql_pair_script(samples: int) -> str:
    """A psql script: `samples` times our lock statement and our complete statement (the hot
    path's SQL with the parameters written in), each timed by psql's \\timing."""
    from backoffice.queue.async_store import _statement

    lock = _statement("lock_postgresql").replace(
        "SELECT * FROM claimed", "SELECT id, lock_token FROM claimed"
    )
    values = {
        "task_type": f"'{TASK_TYPE}'",
        "limit": "1",
        "actor": "'bench'",
        "now": "now()",
        "locked_until": "(now() + interval '600 seconds')",
        "locked_until_text": "CAST(now() + interval '600 seconds' AS text)",
        "ids": "ARRAY[CAST(:'id' AS uuid)]",
        "tokens": "ARRAY[CAST(:'lock_token' AS uuid)]",
        "results": """ARRAY[CAST('{"ok": true}' AS jsonb)]""",
        "task_types": "NULL",
    }
    complete = _statement("complete_postgresql").replace("SELECT * FROM done", "SELECT id FROM done")
    for name, value in values.items():
        lock = lock.replace(f"%({name})s", value)
        complete = complete.replace(f"%({name})s", value)
    pair = f"{lock} \\gset\n{complete};\n"
    return "\\timing on\n" + pair * samples


def long_poll_probe(base_url: str, key: str, admin: str, polls: int, probes: int) -> dict[str, Any]:
    """`polls` lock calls waiting (wait_seconds 30; the admin key, a type nobody creates) while
    /healthz and GET /api/tasks are timed."""
    import asyncio

    async def run() -> dict[str, Any]:
        limits = httpx.Limits(max_connections=polls + 10, max_keepalive_connections=polls + 10)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=90) as client:
            # Warm first: the first listing opens the sync engine's connection (measured 150 ms),
            # which is start-up, not what waiting polls cost.
            for path in ("/healthz", "/api/tasks?limit=1"):
                (await client.get(path, headers={"x-functions-key": admin})).raise_for_status()
            body = {"task_type": "BenchNobody", "wait_seconds": 30}
            waiting = [
                asyncio.create_task(
                    client.post("/api/tasks/lock", json=body, headers={"x-functions-key": admin})
                )
                for _ in range(polls)
            ]
            await asyncio.sleep(10)  # a measuring tool, not a test: let the polls arrive
            still = sum(not w.done() for w in waiting)
            timings: dict[str, list[float]] = {"healthz": [], "list_tasks": []}
            async with httpx.AsyncClient(base_url=base_url, timeout=60) as probe:
                for _ in range(probes):
                    for name, path, headers in (
                        ("healthz", "/healthz", {}),
                        ("list_tasks", "/api/tasks?limit=1", {"x-functions-key": admin}),
                    ):
                        start = time.perf_counter()
                        (await probe.get(path, headers=headers)).raise_for_status()
                        timings[name].append(time.perf_counter() - start)
            for w in waiting:
                w.cancel()
            return {"polls_waiting": still, **timings}

    return asyncio.run(run())


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn's workers), largest single one, MB."""
    largest = 0.0
    for p in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                largest = max(largest, int(line.split()[1]) / 1024)
    return largest


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    kids = [int(c) for c in found]
    return kids + [g for k in kids for g in _children(k)]
