"""Long-poll wake-ups on asyncio: one shared listener per process, waiters are coroutines.

A waiting lock call costs a coroutine parked on an `asyncio.Event`, not a thread. Wake-ups come
from three places:

- PostgreSQL: ONE `LISTEN backoffice_tasks` connection per process (async psycopg) turns every
  NOTIFY (a task created, retried, changed or swept anywhere) into a wake-up of that type.
- This process: `TaskSignals.wake` (the sync store's creates, in worker threads) is forwarded
  here thread-safely, which is all SQLite has besides polling.
- A per-type ticker, running only while somebody waits for that type: every `poll_seconds` it
  asks the database once whether a task of the type is claimable (a `not_before` that came due,
  a run-out lease, a task created by another process on SQLite) and wakes the waiters if so. One
  cheap read per type and interval, however many waiters there are.

A notification wakes ONE waiter (first come, first served), not all: 300 waiters and one new task
make one claim, not 300. A waiter that got tasks passes the wake-up on (`long_poll.py`), so a
burst of tasks is drained by as many waiters as there are tasks; the ticker wakes everybody.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable

import psycopg

from backoffice.queue.claim import NOTIFY_CHANNEL
from backoffice.queue.signals import TaskSignals

log = logging.getLogger(__name__)

# Is a task of this type claimable now? (the ticker's one read)
Peek = Callable[[str], Awaitable[bool]]


class TaskListener:
    """Per-type generations and events that long-polling coroutines wait on."""

    def __init__(self, peek: Peek, poll_seconds: float, listen_url: str | None = None) -> None:
        self._peek = peek
        self._poll_seconds = poll_seconds
        self._listen_url = listen_url
        self._generation: defaultdict[str, int] = defaultdict(int)
        self._waiters: defaultdict[str, deque[asyncio.Future[None]]] = defaultdict(deque)
        self._tickers: dict[str, asyncio.Task[None]] = {}
        self._listen_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._signals: TaskSignals | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the listener runs on (None before `start`)."""
        return self._loop

    @property
    def waiting(self) -> int:
        """How many lock calls are waiting right now (all types)."""
        return sum(len(w) for w in self._waiters.values())

    async def start(self, signals: TaskSignals | None = None) -> None:
        """Start listening (PostgreSQL) and take the wake-ups of `signals` (this process's writes)."""
        self._loop = asyncio.get_running_loop()
        if signals is not None:
            self._signals = signals
            signals.observe(self._wake_threadsafe)
        if self._listen_url is not None:
            self._listen_task = asyncio.create_task(self._listen(), name="task-listener")

    async def close(self) -> None:
        """Stop the LISTEN connection and the tickers."""
        if self._signals is not None:
            self._signals.unobserve(self._wake_threadsafe)
        tasks = [t for t in (self._listen_task, *self._tickers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def generation(self, task_type: str) -> int:
        """The current generation of `task_type`; pass it to `wait` to never miss a wake-up."""
        return self._generation[task_type]

    def wake(self, task_type: str, everyone: bool = False) -> None:
        """A task of `task_type` may be claimable: wake its longest waiter (`everyone`: all of
        them). Event loop thread only."""
        self._generation[task_type] += 1
        waiters = self._waiters.get(task_type)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not everyone:
                    break

    async def wait(self, task_type: str, seen: int, seconds: float) -> None:
        """Return once `task_type` moved past generation `seen`, or after `seconds`."""
        if self._generation[task_type] != seen or seconds <= 0:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters[task_type]
        waiters.append(waiter)
        self._ensure_ticker(task_type)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, seconds)
        finally:
            if waiter in waiters:  # timed out (a woken waiter was taken off already)
                waiters.remove(waiter)
            if not waiters:
                self._waiters.pop(task_type, None)

    def _wake_threadsafe(self, task_type: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is shutting down
                loop.call_soon_threadsafe(self.wake, task_type)

    def _ensure_ticker(self, task_type: str) -> None:
        if task_type not in self._tickers:
            self._tickers[task_type] = asyncio.create_task(self._tick(task_type), name=f"poll-{task_type}")

    async def _tick(self, task_type: str) -> None:
        try:
            while self._waiters.get(task_type):
                await asyncio.sleep(self._poll_seconds)
                if not self._waiters.get(task_type):
                    break
                try:
                    ready = await self._peek(task_type)
                except Exception as exc:  # the database is away: waiters time out as usual
                    log.warning("long-poll check of %s failed: %s", task_type, type(exc).__name__)
                    continue
                if ready:
                    self.wake(task_type, everyone=True)
        finally:
            self._tickers.pop(task_type, None)

    async def _listen(self) -> None:
        assert self._listen_url is not None
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._listen_url, autocommit=True, connect_timeout=5
                )
                async with conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    # Whatever happened while (re)connecting is looked at again.
                    for task_type in list(self._waiters):
                        self.wake(task_type, everyone=True)
                    async for note in conn.notifies():
                        self.wake(note.payload)
            except psycopg.Error as exc:
                # The database went away: the tickers keep waiters going until it is back.
                log.warning("task listener lost its connection: %s", type(exc).__name__)
                await asyncio.sleep(1.0)
