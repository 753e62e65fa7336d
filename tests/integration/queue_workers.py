"""Worker processes for the queue's concurrency, lease and outage tests (run with `python -m`).

    python -m tests.integration.queue_workers drain URL KEY TASK_TYPE THREADS OUT.json [LEASE [IDLE]]
    python -m tests.integration.queue_workers hold URL KEY TASK_TYPE LEASE_SECONDS

`drain` runs THREADS threads that lock and complete over HTTP until lock calls have come back
empty for IDLE seconds (default 0: at the first empty answer). Even threads go one task per call,
odd ones lock 20 at a time and complete them in one batch call.
503 answers are retried after a short pause (the outage test makes some on purpose). It writes
what it saw to OUT.json: every lock (id, token), every completion the server accepted, and every
answer that was neither 200 nor an expected 409.

`hold` locks one task, prints its id and token as one JSON line, then sleeps until killed.
Only httpx and the standard library are imported, so the processes start fast.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import httpx

BATCH = 20
# A request that takes longer than this counts as a hang.
REQUEST_TIMEOUT = 30.0


class Tally:
    """What the threads of one process saw, merged under a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.locked: list[tuple[str, str]] = []
        self.completed: list[str] = []
        self.batch_completed = 0
        self.conflicts: list[tuple[str, str]] = []
        self.unavailable = 0
        self.unexpected: list[dict[str, Any]] = []

    def as_json(self) -> dict[str, Any]:
        """A JSON-able summary."""
        return {
            "locked": self.locked,
            "completed": self.completed,
            "batch_completed": self.batch_completed,
            "conflicts": self.conflicts,
            "unavailable": self.unavailable,
            "unexpected": self.unexpected,
        }


def _post(client: httpx.Client, tally: Tally, path: str, body: dict[str, Any]) -> httpx.Response | None:
    """POST, retrying 503s; None after a transport error or an unexpected answer (recorded)."""
    for _ in range(200):
        try:
            response = client.post(path, json=body)
        except httpx.TransportError as exc:
            # A timeout is a hang; a refused or dropped connection is a crashed server.
            with tally.lock:
                tally.unexpected.append({"path": path, "status": "transport", "body": repr(exc)})
            return None
        if response.status_code != 503:
            return response
        with tally.lock:
            tally.unavailable += 1
            expected = response.json().get("error") == "database_unavailable"
            if not expected or "retry-after" not in response.headers:
                tally.unexpected.append({"path": path, "status": 503, "body": response.text})
        time.sleep(0.2)
    return None


def _record_unexpected(tally: Tally, path: str, response: httpx.Response) -> None:
    with tally.lock:
        tally.unexpected.append({"path": path, "status": response.status_code, "body": response.text[:500]})


def _complete(client: httpx.Client, tally: Tally, items: list[dict[str, Any]], batched: bool) -> None:
    if batched:
        body = {"items": [{"id": t["id"], "lock_token": t["lock_token"], "result": {"ok": 1}} for t in items]}
        response = _post(client, tally, "/api/tasks/complete", body)
        if response is None:
            return
        if response.status_code != 200:
            _record_unexpected(tally, "/api/tasks/complete", response)
            return
        with tally.lock:
            for outcome in response.json()["results"]:
                if outcome["ok"]:
                    tally.completed.append(outcome["id"])
                    tally.batch_completed += 1
                else:
                    tally.conflicts.append((outcome["id"], outcome["error"]))
        return
    for task in items:
        path = f"/api/tasks/{task['id']}/complete"
        response = _post(client, tally, path, {"lock_token": task["lock_token"], "result": {"ok": 1}})
        if response is None:
            continue
        if response.status_code == 200:
            with tally.lock:
                tally.completed.append(task["id"])
        elif response.status_code == 409:
            with tally.lock:
                tally.conflicts.append((task["id"], response.json()["error"]))
        else:
            _record_unexpected(tally, path, response)


def drain_thread(
    url: str, key: str, task_type: str, batched: bool, tally: Tally, lease: int, idle_exit: float
) -> None:
    """Lock and complete until lock calls have come back empty for `idle_exit` seconds."""
    limit = BATCH if batched else 1
    headers = {"x-functions-key": key}
    idle_since: float | None = None
    with httpx.Client(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT) as client:
        while True:
            body = {"task_type": task_type, "limit": limit, "lease_seconds": lease}
            response = _post(client, tally, "/api/tasks/lock", body)
            if response is None:
                continue
            if response.status_code != 200:
                _record_unexpected(tally, "/api/tasks/lock", response)
                return
            items = response.json()["items"]
            if not items:
                # Tasks whose lock answer was lost (a 503 after commit) come back after the lease.
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= idle_exit:
                    return
                time.sleep(0.2)
                continue
            idle_since = None
            with tally.lock:
                tally.locked.extend((t["id"], t["lock_token"]) for t in items)
            _complete(client, tally, items, batched)


def drain(
    url: str, key: str, task_type: str, threads: int, out: str, lease: int = 600, idle_exit: float = 0
) -> None:
    """Run `threads` drain threads and write their tally to `out`."""
    tally = Tally()
    workers = [
        threading.Thread(target=drain_thread, args=(url, key, task_type, n % 2 == 1, tally, lease, idle_exit))
        for n in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    with open(out, "w") as f:
        json.dump(tally.as_json(), f)


def hold(url: str, key: str, task_type: str, lease: int) -> None:
    """Lock one task, say which, and hold it until killed."""
    response = httpx.post(
        f"{url}/api/tasks/lock",
        json={"task_type": task_type, "lease_seconds": lease},
        headers={"x-functions-key": key},
        timeout=REQUEST_TIMEOUT,
    )
    response.raise_for_status()
    task = response.json()["items"][0]
    print(json.dumps({"id": task["id"], "lock_token": task["lock_token"]}), flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "drain":
        url, key, task_type, threads, out, *rest = args
        lease = int(rest[0]) if rest else 600
        idle_exit = float(rest[1]) if len(rest) > 1 else 0.0
        drain(url, key, task_type, int(threads), out, lease, idle_exit)
    elif command == "hold":
        url, key, task_type, lease = args
        hold(url, key, task_type, int(lease))
    else:
        raise SystemExit(f"unknown command {command}")
