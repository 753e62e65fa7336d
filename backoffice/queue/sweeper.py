"""The sweep of run-out locks of every task type, one of the sidecar's periodic duties.

A lock call sweeps only its own type, so without the timer a type nobody polls would keep its
run-out locks `locked` in storage: no `lock_expired` event, no metric, no dead letter. The timer
runs in the one sidecar that does the periodic duties (`backoffice.duties`); should two sweep at
once, that is safe too (`TaskStore.sweep` splits the rows).
"""

from __future__ import annotations

import logging

from backoffice.queue.store import TaskStore

log = logging.getLogger(__name__)

THREAD_NAME = "task-lock-sweeper"


def sweep_run_out_locks(store: TaskStore) -> None:
    """One sweep of every type; a database that is away (or not migrated yet) is tried next time."""
    try:
        swept = store.sweep()
    except Exception as exc:
        log.warning("sweeping run-out locks failed: %s: %s", type(exc).__name__, exc)
        return
    if swept:
        log.info("swept %d run-out lock(s)", swept)
