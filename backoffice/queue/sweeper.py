"""The timer that sweeps run-out locks of every task type.

A lock call sweeps only its own type, so without the timer a type nobody polls would keep its
run-out locks `locked` in storage: no `lock_expired` event, no metric, no dead letter. Each
sidecar runs one timer; several at once are safe (`TaskStore.sweep` splits the rows).
"""

from __future__ import annotations

import logging
import threading

from backoffice.queue.store import TaskStore

log = logging.getLogger(__name__)

THREAD_NAME = "task-lock-sweeper"


class LockSweeper:
    """A daemon thread that calls `TaskStore.sweep` every `interval` seconds until stopped."""

    def __init__(self, store: TaskStore, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)

    def start(self) -> None:
        """Start sweeping (the first sweep after one interval)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for a sweep under way to finish."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                swept = self.store.sweep()
            except Exception as exc:
                # The database may be away (or not migrated yet): keep the timer, try next time.
                log.warning("sweeping run-out locks failed: %s: %s", type(exc).__name__, exc)
                continue
            if swept:
                log.info("swept %d run-out lock(s)", swept)
