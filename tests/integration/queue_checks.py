"""Helpers shared by the queue's concurrency and outage tests: seed tasks, run drain processes,
and check the exactly-once invariants in the database itself."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, insert, select

from backoffice.queue.models import Task, TaskEvent
from tests.helpers import ADMIN

ROOT = Path(__file__).resolve().parents[2]


def seed_tasks(engine: Engine, count: int, task_type: str, actor: str = "seed") -> list[uuid.UUID]:
    """Insert `count` pending tasks (and their `created` events) in bulk; faster than the API."""
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(count)]
    rows = [
        {
            "id": task_id,
            "task_type": task_type,
            "data": {"n": n},
            "status": "pending",
            "priority": n % 3,
            "not_before": None,
            "available_at": now,
            "attempts": 0,
            "max_attempts": 5,
            "version": 1,
            "created_at": now,
            "created_by": actor,
            "updated_at": now,
            "updated_by": actor,
        }
        for n, task_id in enumerate(ids)
    ]
    events = [
        {"task_id": i, "event": "created", "actor": actor, "at": now, "details": {"task_type": task_type}}
        for i in ids
    ]
    with engine.begin() as conn:
        conn.execute(insert(Task), rows)
        conn.execute(insert(TaskEvent), events)
    return ids


def consumer_key(base_url: str, name: str, task_type: str) -> str:
    """Create a consumer key for `task_type` through the API; its plaintext."""
    body = {"name": name, "role": "consumer", "task_types": [task_type]}
    response = httpx.post(f"{base_url}/api/keys", json=body, headers=ADMIN, timeout=30)
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


class Drainers:
    """`processes` drain worker processes of `threads` threads each (killed on exit if still running).

    with Drainers(url, key, task_type, tmp_path, 2, 16) as drainers:
        seen = drainers.collect(timeout=600)
    """

    def __init__(
        self,
        base_url: str,
        key: str,
        task_type: str,
        out_dir: Path,
        processes: int,
        threads: int,
        *extra: str,
    ) -> None:
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []
        for n in range(processes):
            out = out_dir / f"drain-{n}.json"
            args = ["drain", base_url, key, task_type, str(threads), str(out), *extra]
            command = [sys.executable, "-m", "tests.integration.queue_workers", *args]
            self.started.append((subprocess.Popen(command, cwd=ROOT), out))

    def __enter__(self) -> Drainers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()

    def collect(self, timeout: float) -> dict[str, Any]:
        """Wait for the processes to finish and merge what they saw."""
        merged: dict[str, Any] = {
            "locked": [],
            "completed": [],
            "batch_completed": 0,
            "conflicts": [],
            "unavailable": 0,
            "unexpected": [],
        }
        deadline = time.monotonic() + timeout
        for process, out in self.started:
            code = process.wait(timeout=max(deadline - time.monotonic(), 1))
            assert code == 0, f"a drain worker exited with {code}"
            for key, value in json.loads(out.read_text()).items():
                merged[key] += value
        return merged


def task_counts(engine: Engine, task_type: str) -> dict[str, int]:
    """Stored statuses of a type's tasks, counted."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Task.status, func.count()).where(Task.task_type == task_type).group_by(Task.status)
        ).all()
    return {status: n for status, n in rows}


def completed_events(engine: Engine, ids: list[uuid.UUID]) -> Counter[uuid.UUID]:
    """How many `completed` events each of `ids` has."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(TaskEvent.task_id, func.count())
            .where(TaskEvent.event == "completed")
            .group_by(TaskEvent.task_id)
        ).all()
    wanted = set(ids)
    return Counter({task_id: n for task_id, n in rows if task_id in wanted})


def assert_exactly_once(engine: Engine, task_type: str, ids: list[uuid.UUID]) -> None:
    """Every task completed, none locked or left over, exactly one `completed` event each."""
    assert task_counts(engine, task_type) == {"completed": len(ids)}
    events = completed_events(engine, ids)
    assert set(events) == set(ids)
    assert set(events.values()) == {1}
