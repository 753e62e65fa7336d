"""Shoptet's connection limit: 3 requests at once per API token, however many processes use it.

Shoptet counts per token, not per process, and at 00:10/00:20 and 07:00/12:00 two jobs and
Finish_Transport run at once, each in its own worker process. So each request holds two slots:

- one of its process's 3 for the token (a semaphore): enough on its own outside Prefect (scripts,
  the plain client tests), and it keeps one process's threads from queueing at Prefect;
- inside a Prefect flow or task run, also one of the 3 of Prefect's global concurrency limit
  `shoptet-api`, which `backoffice deploy` creates, so every flow run on every worker shares them.

Whether a client takes the global slot is decided when it is made (jobs make theirs inside a
task): inside a run, and only when the limit exists. A Prefect without it (not deployed with
`backoffice deploy`, like the flow tests' harness) gets one warning per client, not one per
request, and the process limit. Once found, the limit is used strictly: deleting it while a run
goes on fails that run's next request instead of letting it past silently.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

MAX_CONNECTIONS_PER_TOKEN = 3
SHOPTET_CONCURRENCY_LIMIT = "shoptet-api"
# A slot outlives a request (30 s timeout) without renewal; a killed process frees it after this.
SLOT_LEASE_SECONDS = 60

_token_slots: dict[str, threading.BoundedSemaphore] = {}
_token_slots_lock = threading.Lock()


def _process_slots(token: str) -> threading.BoundedSemaphore:
    # Shared by every client of the same token in this process.
    with _token_slots_lock:
        return _token_slots.setdefault(token, threading.BoundedSemaphore(MAX_CONNECTIONS_PER_TOKEN))


def _in_prefect_run() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def shared_limit_exists() -> bool:
    """Whether the Prefect API in effect has the `shoptet-api` global concurrency limit."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            client.read_global_concurrency_limit_by_name(SHOPTET_CONCURRENCY_LIMIT)
    except ObjectNotFound:
        return False
    return True


class ConnectionSlots:
    """The slots one Shoptet client's requests take: its process's, and Prefect's inside a run."""

    def __init__(self, token: str) -> None:
        self._process = _process_slots(token)
        self.shared = _in_prefect_run() and shared_limit_exists()
        if _in_prefect_run() and not self.shared:
            from prefect.logging import get_run_logger

            get_run_logger().warning(
                "Prefect has no global concurrency limit %r: this run keeps Shoptet's 3 connections "
                "within its own process only. Run `backoffice deploy` to create it.",
                SHOPTET_CONCURRENCY_LIMIT,
            )

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for one request (the process's first, then Prefect's)."""
        with self._process:
            if not self.shared:
                yield
                return
            from prefect.concurrency.sync import concurrency

            with concurrency(
                SHOPTET_CONCURRENCY_LIMIT,
                occupy=1,
                lease_duration=SLOT_LEASE_SECONDS,
                strict=True,
                # The lease outlasts the request anyway; a failed renewal must not abort it.
                raise_on_lease_renewal_failure=False,
            ):
                yield
