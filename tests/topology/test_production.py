"""Production as one system: PostgreSQL for our data and Prefect's, a Prefect server on it, two
process workers in one pool, two sidecars on one database (no reconcile process: the sidecars do
it), the fake Shoptet and Comgate; every process started with the README's production commands.

Each step waits for the event it needs with a generous deadline, never a bare sleep. The wall time
of every step is printed (`-s` shows it).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from backoffice.jobs.catalog import Catalog, load_catalog
from tests.helpers import ADMIN
from tests.topology.system import BACKOFFICE, PYTHON, System
from tests.topology.waits import until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(1200)]

# The bound: a plain `prefect deploy` is re-paused by the sidecars within 75 s.
REPAUSE_SECONDS = 75.0
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
DRAIN_TASKS = 5000
DRAIN_THREADS = 8
TASK_TYPE = "TopologyDrain"


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    """The whole topology; every process is killed at the end, pass or fail."""
    began = time.monotonic()
    started = System.start(tmp_path)
    print(f"\n[topology] start-up (databases, Prefect, workers, sidecars): {time.monotonic() - began:.1f} s")
    try:
        yield started
    finally:
        began = time.monotonic()
        started.close()
        print(f"[topology] everything killed, databases dropped: {time.monotonic() - began:.1f} s")


class Clock:
    """Wall time per step, printed as it goes."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()

    def lap(self, step: str) -> None:
        now = time.monotonic()
        print(f"[topology] {step}: {now - self.last:.1f} s (total {now - self.start:.1f} s)")
        self.last = now


def api(sidecar: str, method: str, path: str, **kwargs: Any) -> Any:
    """Call a sidecar as the admin; the JSON answer (2xx asserted)."""
    response = httpx.request(method, f"{sidecar}{path}", headers=ADMIN, timeout=60, **kwargs)
    assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
    return response.json()


def deployment(system: System, catalog: Catalog, job_id: str) -> dict[str, Any]:
    """A job's deployment as Prefect shows it."""
    job = next(j for j in catalog.jobs if j.id == job_id)
    response = httpx.get(f"{system.prefect_api}/deployments/name/{job.flow_name}/{job_id}", timeout=30)
    response.raise_for_status()
    return dict(response.json())


def flow_run(system: System, run_id: str) -> dict[str, Any]:
    """A flow run as Prefect shows it."""
    response = httpx.get(f"{system.prefect_api}/flow_runs/{run_id}", timeout=30)
    response.raise_for_status()
    return dict(response.json())


def final_state(system: System, run_id: str, timeout: float = 300) -> str:
    """Wait for a run to end; its state type."""
    state: str = until(
        f"flow run {run_id} ended",
        lambda: (s := flow_run(system, run_id)["state"]["type"]) in FINAL and s,
        timeout=timeout,
        every=1,
    )
    return state


def plain_deploy(system: System, catalog: Catalog) -> None:
    """Prefect's own `prefect --no-prompt deploy --all`, as an operator types it (production.env's
    variables in the environment); asserts that it did update every deployment."""
    before = {j: deployment(system, catalog, j)["updated"] for j in catalog.ids}
    system.command([PYTHON, "-m", "prefect", "--no-prompt", "deploy", "--all"])
    assert all(deployment(system, catalog, j)["updated"] != before[j] for j in catalog.ids)


def repaused(system: System, catalog: Catalog, job_ids: list[str], what: str) -> None:
    """After a plain deploy un-paused them, the sidecars pause `job_ids` again within 75 s."""
    until(
        what,
        lambda: all(deployment(system, catalog, j)["paused"] for j in job_ids),
        timeout=REPAUSE_SECONDS,
        every=1,
    )


def run_job(sidecar: str, job_id: str) -> str:
    """Start a forced run through the sidecar; its flow run id."""
    return str(api(sidecar, "POST", f"/api/jobs/{job_id}/run", json={"force": True})["flow_run_id"])


def who_ran(system: System, run_id: str) -> list[str]:
    """The workers that ran this run. Each worker that polled it tries to submit it; the server
    lets one move it to Pending, which then logs that it started the run's process (by run name),
    while the others log that they aborted their submission."""
    name = flow_run(system, run_id)["name"]
    return [
        w.name
        for w in system.workers
        if f"submitting flow run '{run_id}'" in (log := w.output())
        and f"Flow run '{name}' submitted to infrastructure" in log
        and f"Aborted submission of flow run '{run_id}'" not in log
    ]


def runs_on_both_workers(system: System, jobs: list[str]) -> dict[str, list[str]]:
    """Forced runs of `jobs` (through both sidecars), in rounds until each worker ran one; who ran what."""
    ran: dict[str, list[str]] = {}
    urls = [s.url for s in system.sidecars]
    deadline = time.monotonic() + 600
    while {w for names in ran.values() for w in names} != {w.name for w in system.workers}:
        assert time.monotonic() < deadline, f"not every worker ran a job: {ran}"
        started = [run_job(urls[n % 2], job_id) for n, job_id in enumerate(jobs)]
        for run_id in started:
            assert final_state(system, run_id) == "COMPLETED", flow_run(system, run_id)["state"]
            ran[run_id] = who_ran(system, run_id)
            assert len(ran[run_id]) == 1, f"run {run_id} submitted by {ran[run_id]}"
    return ran


def test_production_topology(system: System) -> None:
    clock = Clock()
    a, b = system.sidecars
    catalog = load_catalog()

    # 1. `backoffice deploy --env production` registers the catalog; both sidecars list it.
    system.command([*BACKOFFICE, "deploy", "--env", "production"])
    for sidecar in (a, b):
        listed = api(sidecar.url, "GET", "/api/jobs")["items"]
        assert [j["id"] for j in listed] == catalog.ids
    clock.lap("1. deploy, both sidecars list the jobs")

    # 3. Disable every job through sidecar A (their crons stay quiet, the runs below are forced);
    #    sidecar B shows them disabled; a plain deploy un-pauses them and the sidecars pause them
    #    again within 75 s. No reconcile process runs: only the sidecars' duties can do it.
    for job_id in catalog.ids:
        assert api(a.url, "PUT", f"/api/jobs/{job_id}/enabled", json={"enabled": False})["enabled"] is False
    assert all(not j["enabled"] for j in api(b.url, "GET", "/api/jobs")["items"])
    assert all(deployment(system, catalog, j)["paused"] for j in catalog.ids)
    plain_deploy(system, catalog)
    deployed_at = time.monotonic()
    repaused(system, catalog, catalog.ids, "the sidecars re-paused every job after a plain deploy")
    clock.lap(f"3. disable via A, B sees it, re-paused {time.monotonic() - deployed_at:.0f} s after deploy")

    # 2. Runs of several jobs are picked up by both workers (more rounds until each ran one);
    # 6. meanwhile 5,000 tasks are drained through both sidecars.
    jobs = [j for j in catalog.ids if j.startswith(("Import_", "Controlling"))]
    with ThreadPoolExecutor(1) as background:
        drained = background.submit(drain, system)
        ran = runs_on_both_workers(system, jobs)
        drained.result()
    clock.lap(
        f"2 + 6. {len(ran)} runs on both workers; {DRAIN_TASKS} tasks drained by {DRAIN_THREADS} threads"
    )

    # 4. SIGKILL the sidecar holding the duties' lock; the survivor reconciles the next plain deploy.
    holder = until("a sidecar holds the duties", system.duties_holder, timeout=60)
    survivor = b if holder is a else a
    holder.kill()
    plain_deploy(system, catalog)
    deployed_at = time.monotonic()
    repaused(system, catalog, catalog.ids, "the surviving sidecar re-paused every job")
    assert system.duties_holder() is survivor
    clock.lap(f"4. holder killed, survivor re-paused {time.monotonic() - deployed_at:.0f} s after deploy")

    finish_transport_killed_mid_box(system, survivor.url)
    clock.lap("5. Finish_Transport's process killed mid-box")


def finish_transport_killed_mid_box(system: System, sidecar: str) -> None:
    """5. The process running Finish_Transport on a three-item box is SIGKILLed while the fake holds
    the first item's stock request: the run ends Crashed. The item's outcome is unknown to us, so
    (as designed, backoffice/warehouse/transport.py) no run sends it again on its own: once its
    in-flight grace is over the next run puts the box in Error, a person says what Shoptet shows,
    and the next run finishes the box. The fake got each item's stock exactly once."""
    fake = system.shoptet
    assert fake is not None
    codes = sorted(fake.state.stock[1])[:3]
    box = f"TOPO-{uuid.uuid4().hex[:8]}"
    items = [{"product_code": code, "amount": n + 1} for n, code in enumerate(codes)]
    api(sidecar, "POST", "/api/transport-boxes", json={"code": box, "state": "Received", "items": items})
    gate = fake.hold("/api/stocks/")
    try:
        run_id = run_job(sidecar, "Finish_Transport")
        until("the fake holds the first item's stock request", lambda: gate.held == 1, timeout=300)
        infrastructure = until(
            "the worker recorded the run's process", lambda: flow_run(system, run_id)["infrastructure_pid"]
        )
        os.kill(int(str(infrastructure).rsplit(":", 1)[-1]), signal.SIGKILL)
        assert final_state(system, run_id) == "CRASHED"
    finally:
        gate.open()

    def movements() -> list[str]:
        return [m.product_code for m in fake.state.stock_ledger if m.product_code in codes]

    def box_state() -> dict[str, Any]:
        return dict(api(sidecar, "GET", f"/api/transport-boxes/{box}"))

    # The held request meets a closed connection once let through: Shoptet never applied it here.
    # Either way the run recorded the item as sent, and nothing else was sent.
    assert movements() in ([], [codes[0]])
    assert [i["movement_state"] for i in box_state()["items"]] == ["sent", "pending", "pending"]
    # Within IN_FLIGHT_GRACE (10 min) a run leaves the box alone, as the sender may still be alive:
    # move the send time back instead of waiting.
    system.sql(
        system.ours,
        "UPDATE transport_box_items SET sent_at = sent_at - interval '11 minutes'"
        " WHERE movement_state = 'sent' AND box_id = (SELECT id FROM transport_boxes WHERE code = %s)",
        box,
    )
    again = run_job(sidecar, "Finish_Transport")
    # The run fails on purpose: a box moved to Error needs a person (and the alert tells one).
    assert final_state(system, again) == "FAILED", flow_run(system, again)["state"]
    assert box in flow_run(system, again)["state"]["message"]
    assert box_state()["state"] == "Error" and movements() in ([], [codes[0]])
    # The person looks at the stock in Shoptet (here: the fake's ledger) and says what it shows.
    seen = "stocked" if movements() else "not_stocked"
    api(
        sidecar,
        "PUT",
        f"/api/transport-boxes/{box}/state",
        json={"state": "Received", "unknown_items": seen},
    )
    last = run_job(sidecar, "Finish_Transport")
    assert final_state(system, last) == "COMPLETED", flow_run(system, last)["state"]
    assert box_state()["state"] == "Stocked", box_state()
    assert sorted(movements()) == codes  # each item's stock exactly once


def drain(system: System) -> None:
    """6. DRAIN_TASKS tasks, created and drained through both sidecars by DRAIN_THREADS threads
    (each batch locked through one sidecar and completed through the other): each completed once."""
    urls = [s.url for s in system.sidecars]

    def create(n: int) -> None:
        with httpx.Client(base_url=urls[n % 2], headers=ADMIN, timeout=60) as client:
            for i in range(n, DRAIN_TASKS, DRAIN_THREADS):
                response = client.post("/api/tasks", json={"task_type": TASK_TYPE, "data": {"i": i}})
                assert response.status_code == 201, response.text

    with ThreadPoolExecutor(DRAIN_THREADS) as pool:
        list(pool.map(create, range(DRAIN_THREADS)))

    completed: list[str] = []
    lock = threading.Lock()

    def consume(n: int) -> None:
        with httpx.Client(headers=ADMIN, timeout=60) as client:
            empty = 0
            while empty < 2:
                url = urls[(n + empty) % 2]
                locked = client.post(f"{url}/api/tasks/lock", json={"task_type": TASK_TYPE, "limit": 50})
                assert locked.status_code == 200, locked.text
                batch = locked.json()["items"]
                if not batch:
                    empty += 1
                    continue
                empty = 0
                items = [{"id": t["id"], "lock_token": t["lock_token"], "result": {}} for t in batch]
                other = urls[(n + 1) % 2]  # complete through the other sidecar
                done = client.post(f"{other}/api/tasks/complete", json={"items": items})
                assert done.status_code == 200, done.text
                results = done.json()["results"]
                assert all(r["ok"] for r in results), results
                with lock:
                    completed.extend(r["id"] for r in results)

    with ThreadPoolExecutor(DRAIN_THREADS) as pool:
        list(pool.map(consume, range(DRAIN_THREADS)))
    assert len(completed) == DRAIN_TASKS == len(set(completed))
    rows = system.sql(
        system.ours,
        "SELECT count(*), count(DISTINCT e.task_id) FROM task_events e JOIN tasks t ON t.id = e.task_id"
        " WHERE t.task_type = %s AND e.event = 'completed'",
        TASK_TYPE,
    )
    assert rows == [(DRAIN_TASKS, DRAIN_TASKS)]
    statuses = system.sql(
        system.ours, "SELECT status, count(*) FROM tasks WHERE task_type = %s GROUP BY 1", TASK_TYPE
    )
    assert statuses == [("completed", DRAIN_TASKS)]
