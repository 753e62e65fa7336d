"""Long-polls on the real sidecar (uvicorn, lifespan on, PostgreSQL and SQLite): hundreds of
waiting lock calls cost coroutines, so /healthz and ordinary requests still answer; a poller
whose client hung up claims nothing; a task claimed just as its client went is given back.

The server runs in a thread of this process so the tests can gate on its own counters (how many
polls wait, how many lock calls finished) instead of on sleeps.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio.to_thread
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from backoffice.db import create_db_engine
from backoffice.queue.async_store import hot_path_for
from backoffice.queue.listener import TaskListener
from backoffice.queue.long_poll import lock_or_wait
from backoffice.queue.store import TaskStore
from backoffice.settings import Settings
from task_queue_api.context import AppContext
from task_queue_api.main import create_app
from task_queue_api.one_write import UVICORN_HTTP as SIDECAR_PROTOCOL
from tests.helpers import ADMIN, auth
from tests.servers import free_port

TYPE = "EshopExport"
POLLS = 220
GENEROUS = 120.0  # seconds; a deadline for gates, never a duration the test relies on
MAX_WAIT = 30  # the longest wait_seconds a lock call may ask for


def wait_until(condition: Callable[[], bool], what: str, timeout: float = GENEROUS) -> None:
    """Gate: poll `condition` until true; fail after `timeout` (a loaded machine is slow, not wrong)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@contextmanager
def live_sidecar(settings: Settings, http: str = "auto") -> Iterator[tuple[str, FastAPI]]:
    """The sidecar app under uvicorn in a thread, lifespan on, served by the `http` protocol
    (default: uvicorn's own); yields (base URL, app)."""
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=http,
        log_level="warning",
        lifespan="on",
        backlog=2048,
        timeout_keep_alive=settings.keep_alive_seconds,  # as `backoffice api` serves it
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"sidecar-{port}", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), "uvicorn to start")
    assert server.started, "the sidecar did not start"
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def context(app: FastAPI) -> AppContext:
    """The running app's context."""
    ctx: AppContext = app.state.ctx
    return ctx


def waiting(app: FastAPI) -> int:
    """How many lock calls the app has waiting right now."""
    listener = context(app).listener
    assert listener is not None
    return listener.waiting


def lock_calls_answered(app: FastAPI) -> float:
    """How many POST /api/tasks/lock calls the app finished (its request histogram's count)."""
    total = 0.0
    for metric in app.state.request_histogram.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels.get("route") == "/api/tasks/lock":
                total += sample.value
    return total


def threads_in_use(app: FastAPI) -> int:
    """Worker threads the app's event loop has borrowed right now (asked on that loop)."""

    async def borrowed() -> int:
        return int(anyio.to_thread.current_default_thread_limiter().borrowed_tokens)

    listener = context(app).listener
    assert listener is not None and listener.loop is not None
    return asyncio.run_coroutine_threadsafe(borrowed(), listener.loop).result(timeout=GENEROUS)


def consumer(base_url: str, name: str) -> dict[str, str]:
    """Auth header of a new consumer key for TYPE."""
    body = {"name": name, "role": "consumer", "task_types": [TYPE]}
    response = httpx.post(f"{base_url}/api/keys", json=body, headers=ADMIN, timeout=30)
    assert response.status_code == 201, response.text
    return auth(response.json()["key"])


def create_task(client: httpx.Client) -> str:
    """Create a task of TYPE; its id."""
    response = client.post("/api/tasks", json={"task_type": TYPE, "data": {}}, headers=ADMIN)
    assert response.status_code == 201, response.text
    task_id: str = response.json()["id"]
    return task_id


def test_hundreds_of_waiting_polls_leave_the_server_answering(settings: Settings) -> None:
    """220 lock calls wait; /healthz and a task listing answer while they all still wait; then
    220 tasks arrive and every poll gets exactly one of them."""
    with live_sidecar(settings) as (base_url, app):
        worker = consumer(base_url, "poller")

        async def scenario() -> tuple[list[str], list[str]]:
            limits = httpx.Limits(max_connections=POLLS + 20, max_keepalive_connections=POLLS + 20)
            async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=GENEROUS) as client:

                async def poll() -> list[str]:
                    # A worker's loop: poll again when a wait ends empty (30 s is the longest wait).
                    body = {"task_type": TYPE, "wait_seconds": MAX_WAIT}
                    while True:
                        answer = await client.post("/api/tasks/lock", json=body, headers=worker)
                        assert answer.status_code == 200, answer.text
                        if items := answer.json()["items"]:
                            return [item["id"] for item in items]

                polls = [asyncio.create_task(poll()) for _ in range(POLLS)]
                await asyncio.to_thread(wait_until, lambda: waiting(app) >= POLLS, f"{POLLS} waiting polls")
                health = await client.get("/healthz")
                listing = await client.get("/api/tasks", headers=ADMIN)
                # Both answered while the polls were still waiting, and the waiting polls hold no
                # worker thread (the SQLite ticker's look may hold one at a time).
                assert waiting(app) >= POLLS and not any(p.done() for p in polls)
                assert await asyncio.to_thread(threads_in_use, app) <= 1
                assert health.status_code == 200, health.text
                assert listing.status_code == 200 and listing.json()["items"] == []
                created = []
                for _ in range(POLLS):
                    response = await client.post(
                        "/api/tasks", json={"task_type": TYPE, "data": {}}, headers=ADMIN
                    )
                    assert response.status_code == 201, response.text
                    created.append(response.json()["id"])
                got = [task_id for ids in await asyncio.gather(*polls) for task_id in ids]
                return got, created

        got, created = asyncio.run(scenario())
        assert sorted(got) == sorted(created), "every poll gets one task, no task twice"


@pytest.mark.parametrize("http", [SIDECAR_PROTOCOL, "httptools"])
def test_a_poller_whose_client_went_away_claims_nothing(settings: Settings, http: str) -> None:
    """A long-poll's client hangs up; a task then arrives: the poll ends without claiming it, the
    task stays pending with no attempt counted, and the next lock call gets it. Under the
    sidecar's protocol the connection says so (one_write.client_gone); under uvicorn's own, the
    ASGI receive does."""
    with live_sidecar(settings, http) as (base_url, app):
        worker = consumer(base_url, "poller")
        body = f'{{"task_type": "{TYPE}", "wait_seconds": {MAX_WAIT}}}'.encode()
        request = (
            f"POST /api/tasks/lock HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"x-functions-key: {worker['x-functions-key']}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        port = int(base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(request)
            wait_until(lambda: waiting(app) == 1, "the poll to wait")
        # The socket is closed: the client is gone while its poll still waits.
        answered_before = lock_calls_answered(app)
        with httpx.Client(base_url=base_url, timeout=30) as client:
            task_id = create_task(client)
            # The woken poll finished (answered into the void) before anything is looked at.
            wait_until(lambda: lock_calls_answered(app) > answered_before, "the abandoned poll to end")
            task = client.get(f"/api/tasks/{task_id}", headers=ADMIN).json()
            assert task["status"] == "pending" and task["attempts"] == 0 and task["locked_by"] is None
            events = client.get(f"/api/tasks/{task_id}/events", headers=ADMIN).json()["items"]
            assert [e["event"] for e in events] == ["created"]
            locked = client.post("/api/tasks/lock", json={"task_type": TYPE}, headers=worker).json()["items"]
            assert [t["id"] for t in locked] == [task_id] and locked[0]["attempts"] == 1


def test_a_task_claimed_as_its_client_vanished_goes_back_at_once(settings: Settings) -> None:
    """The client hung up as its lock call arrived (gone when asked after the claim): the claimed
    task is released at once, pending with the attempt given back, and logged."""
    engine = create_db_engine(settings)
    store = TaskStore(engine, settings)
    task, _ = store.create("ops", TYPE, {"n": 1})
    asked: list[bool] = []

    async def scenario() -> list[Any]:
        hot = hot_path_for(store)
        await hot.open()
        listener = TaskListener(hot.claimable, poll_seconds=0.2)
        await listener.start()

        async def client_gone() -> bool:
            # A call that has not waited claims at once: the first question comes after the claim.
            asked.append(True)
            return True

        try:
            return await lock_or_wait(hot, listener, client_gone, TYPE, "worker-1", 1, None, 5.0)
        finally:
            await listener.close()
            await hot.close()

    try:
        assert asyncio.run(scenario()) == []
        assert len(asked) == 1
        back = store.get(task.id)
        assert back.status == "pending" and back.attempts == 0 and back.lock_token is None
        assert [e.event for e in store.events(task.id)] == ["created", "locked", "lock_released"]
        [again] = store.lock(TYPE, "worker-2")
        assert again.id == task.id and again.attempts == 1 and again.locked_by == "worker-2"
    finally:
        store.close()
        engine.dispose()


@pytest.mark.parametrize("limit", [1, 3])
def test_a_poll_wakes_for_a_task_created_by_another_process(settings: Settings, limit: int) -> None:
    """A task written straight into the database by another process (no wake-up in this one;
    on PostgreSQL a NOTIFY, on SQLite only the ticker's look) ends a waiting poll with it."""
    with live_sidecar(settings) as (base_url, app):
        worker = consumer(base_url, "poller")
        other = TaskStore(create_db_engine(settings), settings)  # another process's store
        try:
            outcome: dict[str, Any] = {}

            def poll() -> None:
                body = {"task_type": TYPE, "wait_seconds": MAX_WAIT, "limit": limit}
                outcome["r"] = httpx.post(
                    f"{base_url}/api/tasks/lock", json=body, headers=worker, timeout=GENEROUS + 30
                )

            thread = threading.Thread(target=poll)
            thread.start()
            wait_until(lambda: waiting(app) == 1, "the poll to wait")
            task, _ = other.create("ops", TYPE, {"from": "elsewhere"})
            thread.join(timeout=GENEROUS + 60)
            assert outcome["r"].status_code == 200, outcome["r"].text
            assert [t["id"] for t in outcome["r"].json()["items"]] == [str(task.id)]
        finally:
            other.close()
            other.engine.dispose()
