"""Concurrent hot-path calls of one kind, sent to PostgreSQL as one statement.

A lock call and a completion are each one autocommit statement, and with many one-task callers
the database spends most of each on the statement's round trip and its commit (its WAL flush),
not on the one row. So the sidecar combines: while a statement for a key (a task type, caller
and lease for locks; a caller for completions) is in flight, the calls that arrive for the
same key wait, and go together as the next statement (the lock statement with the sum of their
limits; the completion statement with all their items). One caller alone is sent at once: a
call waits only behind a statement already running, never for a timer. Each call still gets
its own answer (its own tasks, its own record or refusal), as if it had run alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")
T = TypeVar("T")

# Run one statement for a key's calls: one answer (or the exception it meets) per call, in order.
Run = Callable[[K, Sequence[R]], Awaitable[Sequence[T | Exception]]]
# Called with an answer whose caller was cancelled while its statement ran (a claimed task
# with nobody to hand it to goes back at once).
Orphan = Callable[[K, R, T], Awaitable[None]]
# How much of the statement a call takes (a lock call's limit); a batch stays within `capacity`.
Weight = Callable[[R], int]
# Calls with the same value here never share a statement (the same task twice).
Distinct = Callable[[R], Hashable]


@dataclass
class _Queue(Generic[R, T]):
    waiting: deque[tuple[R, asyncio.Future[T]]] = field(default_factory=deque)
    in_flight: int = 0


class Combiner(Generic[K, R, T]):
    """Calls with the same key combined into one statement while another is in flight.

    `in_flight` statements per key run at once (2: a second caller is not held behind the
    first; more callers than that share the next statement)."""

    def __init__(
        self,
        run: Run[K, R, T],
        capacity: int,
        *,
        weight: Weight[R] = lambda _: 1,
        distinct: Distinct[R] | None = None,
        orphan: Orphan[K, R, T] | None = None,
        in_flight: int = 2,
    ) -> None:
        self._run = run
        self._capacity = capacity
        self._weight = weight
        self._distinct = distinct
        self._orphan = orphan
        self._in_flight = in_flight
        self._queues: dict[K, _Queue[R, T]] = {}
        self._drains: set[asyncio.Task[None]] = set()
        self.statements = 0  # statements run, for tests and metrics
        self.calls = 0  # calls answered through them

    async def __call__(self, key: K, request: R) -> T:
        """The call's own answer, from a statement it may share."""
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue()
        answer: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        queue.waiting.append((request, answer))
        if queue.in_flight < self._in_flight:
            queue.in_flight += 1
            drain = asyncio.create_task(self._drain(key, queue))
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        return await answer

    def _next_batch(self, queue: _Queue[R, T]) -> list[tuple[R, asyncio.Future[T]]]:
        batch: list[tuple[R, asyncio.Future[T]]] = []
        taken, seen = 0, set()
        while queue.waiting:
            request, answer = queue.waiting[0]
            if answer.done():  # cancelled before its statement: it never happened
                queue.waiting.popleft()
                continue
            weight = self._weight(request)
            identity = self._distinct(request) if self._distinct is not None else None
            if batch and (taken + weight > self._capacity or (identity is not None and identity in seen)):
                break
            batch.append(queue.waiting.popleft())
            taken += weight
            seen.add(identity)
        return batch

    async def _drain(self, key: K, queue: _Queue[R, T]) -> None:
        try:
            while batch := self._next_batch(queue):
                await self._answer(key, batch)
        finally:
            queue.in_flight -= 1
            if not queue.in_flight:
                self._queues.pop(key, None)
                for _, answer in queue.waiting:  # only when cancelled: no drain is left for them
                    answer.cancel()

    async def _answer(self, key: K, batch: list[tuple[R, asyncio.Future[T]]]) -> None:
        self.statements += 1
        self.calls += len(batch)
        try:
            answers = await self._run(key, [r for r, _ in batch])
        except Exception as exc:
            for _, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            return
        except BaseException:  # the drain itself cancelled (shutdown): nobody is left waiting
            for _, answer in batch:
                answer.cancel()
            raise
        orphans: list[tuple[R, T]] = []
        for (request, answer), got in zip(batch, answers, strict=True):
            if answer.done():  # its caller was cancelled while the statement ran
                if not isinstance(got, Exception):
                    orphans.append((request, got))
            elif isinstance(got, Exception):
                answer.set_exception(got)
            else:
                answer.set_result(got)
        for request, got in orphans:  # after the others have their answers
            if self._orphan is not None:
                try:
                    await self._orphan(key, request, got)
                except Exception:
                    log.exception("Could not give back what a cancelled call got")
