"""Wake long-polling lockers when tasks become available.

The sync `TaskStore.lock` (flows, scripts) waits here, in threads. PostgreSQL: one LISTEN
connection per process fans NOTIFYs out to waiting threads, so a task created by another sidecar
wakes a waiter at once. SQLite: waiters in this process are woken directly; others find new tasks
by polling. The sidecar's lock calls wait as coroutines instead (`listener.py`), which observe the
wake-ups given here.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable

import psycopg

log = logging.getLogger(__name__)


class TaskSignals:
    """Per-task-type generation counters that waiting threads block on."""

    def __init__(self, listen_url: str | None = None, channel: str = "backoffice_tasks") -> None:
        self._cond = threading.Condition()
        self._generation: defaultdict[str, int] = defaultdict(int)
        self._listen_url = listen_url
        self._channel = channel
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        # Others told of every wake-up (the asyncio listener, backoffice/queue/listener.py).
        self._observers: list[Callable[[str], None]] = []

    def generation(self, task_type: str) -> int:
        """The current generation of `task_type`; pass it to `wait` to never miss a wake-up."""
        self._ensure_listener()
        with self._cond:
            return self._generation[task_type]

    def wake(self, task_type: str) -> None:
        """Tasks of `task_type` may be available: wake its waiters."""
        with self._cond:
            self._generation[task_type] += 1
            self._cond.notify_all()
            observers = list(self._observers)
        for observer in observers:
            observer(task_type)

    def observe(self, observer: Callable[[str], None]) -> None:
        """Call `observer(task_type)` on every wake-up (from whichever thread wakes)."""
        with self._cond:
            self._observers.append(observer)

    def unobserve(self, observer: Callable[[str], None]) -> None:
        """Stop calling `observer`."""
        with self._cond:
            if observer in self._observers:
                self._observers.remove(observer)

    def wait(self, task_type: str, seen: int, timeout: float) -> None:
        """Block until `task_type` moves past generation `seen`, or `timeout` seconds pass."""
        with self._cond:
            self._cond.wait_for(lambda: self._generation[task_type] != seen, timeout)

    def close(self) -> None:
        """Stop the LISTEN thread."""
        self._stop.set()
        if self._listener is not None:
            self._listener.join(timeout=5)

    def _ensure_listener(self) -> None:
        if self._listen_url is None or self._listener is not None:
            return
        with self._cond:
            if self._listener is None:
                self._listener = threading.Thread(
                    target=self._listen, name="task-signals-listen", daemon=True
                )
                self._listener.start()

    def _listen(self) -> None:
        assert self._listen_url is not None
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._listen_url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {self._channel}")
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self.wake(note.payload)
            except psycopg.Error as exc:
                # The database went away: waiters fall back to polling until it is back.
                log.warning("task signal listener lost its connection: %s", exc)
                self._stop.wait(1.0)
