"""A lock call that waits (`wait_seconds`) as a coroutine, for a client that may hang up.

Before each claim after a wait the client is asked whether it is still there: a poll whose
client went away claims nothing. A claim made just as the client went (it hung up while the
statement ran, or just before a first claim, which does not ask first) is given back at once
(`HotPath.release`: pending again, the attempt not counted), instead of sitting `locked` until
its lease runs out.

A notification wakes one waiter (listener.py); a waiter that got tasks, or that leaves without
claiming, passes the wake-up on, so the next waiter looks for the next task.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from backoffice.queue.async_store import HotPath
from backoffice.queue.listener import TaskListener
from backoffice.queue.records import TaskRecord

ClientGone = Callable[[], Awaitable[bool]]


async def lock_or_wait(
    hot: HotPath,
    listener: TaskListener,
    client_gone: ClientGone,
    task_type: str,
    actor: str,
    limit: int,
    lease_seconds: int | None,
    wait_seconds: float,
) -> list[TaskRecord]:
    """Lock up to `limit` tasks; wait up to `wait_seconds` for one when none is ready."""
    deadline = time.monotonic() + wait_seconds
    waited = False
    while True:
        # Read before claiming: a task that arrives between the claim and the wait wakes us.
        seen = listener.generation(task_type)
        # The first claim follows the request's arrival at once (a client gone by then is caught
        # after the claim, below); after a wait, the client is asked first.
        if waited and await client_gone():
            listener.wake(task_type)  # whatever woke us is somebody else's now
            return []
        claimed = await hot.claim(task_type, actor, limit, lease_seconds)
        if claimed:
            if await client_gone():
                await hot.release(claimed, actor)  # notifies: the next waiter gets them
                return []
            listener.wake(task_type)  # there may be more: the next waiter looks
            return claimed
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return []
        await listener.wait(task_type, seen, remaining)
        waited = True
