"""The hot path's combiner (backoffice/queue/combine.py) on its own: which calls share a
statement, and that each call still gets its own answer. Statements are functions that wait
on an event the test sets, so "in flight" is a state the test holds, not a race."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from backoffice.queue.combine import Combiner


class Statements:
    """A statement per batch that answers each call with `request * 10`, once released."""

    def __init__(self, fail_on: int | None = None, refuse: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.gates: list[asyncio.Event] = []
        self.changed = asyncio.Event()
        self.fail_on = fail_on  # the batch containing this request fails as a whole
        self.refuse = refuse  # this request alone is answered with an error

    async def run(self, key: str, requests: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(requests))
        self.changed.set()
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        if self.fail_on in requests:
            raise ConnectionError("the database went away")
        return [ValueError(f"refused {r}") if r == self.refuse else r * 10 for r in requests]

    async def started(self, n: int) -> None:
        """Gate: until `n` statements have started."""
        while len(self.batches) < n:
            self.changed.clear()
            await self.changed.wait()

    def release(self, n: int) -> None:
        self.gates[n].set()


async def _calls(
    combiner: Combiner[str, int, int], key: str, requests: Sequence[int]
) -> list[asyncio.Task[int]]:
    """The calls, each queued (none of their statements has started yet)."""
    tasks = [asyncio.create_task(combiner(key, r)) for r in requests]
    await asyncio.sleep(0)
    return tasks


def test_a_lone_call_is_sent_at_once_and_gets_its_answer() -> None:
    async def scenario() -> None:
        db = Statements()
        combiner: Combiner[str, int, int] = Combiner(db.run, capacity=10)
        [call] = await _calls(combiner, "k", [1])
        await db.started(1)
        db.release(0)
        assert await call == 10
        assert db.batches == [[1]] and (combiner.statements, combiner.calls) == (1, 1)

    asyncio.run(scenario())


def test_calls_arriving_while_statements_run_share_the_next_one() -> None:
    async def scenario() -> None:
        db = Statements()
        combiner: Combiner[str, int, int] = Combiner(db.run, capacity=10, in_flight=2)
        first = await _calls(combiner, "k", [1])
        await db.started(1)
        second = await _calls(combiner, "k", [2])  # a second statement may run beside the first
        await db.started(2)
        later = await _calls(combiner, "k", [3, 4, 5])  # two in flight: these wait
        for _ in range(5):
            await asyncio.sleep(0)
        assert db.batches == [[1], [2]]
        db.release(0)
        await db.started(3)
        assert db.batches == [[1], [2], [3, 4, 5]]
        db.release(1)
        db.release(2)
        assert [await t for t in first + second + later] == [10, 20, 30, 40, 50]
        assert (combiner.statements, combiner.calls) == (3, 5)

    asyncio.run(scenario())


def test_calls_queued_together_go_together() -> None:
    async def scenario() -> None:
        db = Statements()
        combiner: Combiner[str, int, int] = Combiner(db.run, capacity=10, in_flight=2)
        calls = await _calls(combiner, "k", [1, 2, 3])
        await db.started(1)
        db.release(0)
        assert [await t for t in calls] == [10, 20, 30]
        assert db.batches == [[1, 2, 3]]

    asyncio.run(scenario())


def test_keys_never_share_a_statement() -> None:
    async def scenario() -> None:
        db = Statements()
        combiner: Combiner[str, int, int] = Combiner(db.run, capacity=10, in_flight=1)
        a1 = await _calls(combiner, "a", [1])
        await db.started(1)
        a2 = await _calls(combiner, "a", [2])  # waits behind a's statement
        b = await _calls(combiner, "b", [3])  # does not
        await db.started(2)
        assert db.batches == [[1], [3]]
        db.release(0)
        await db.started(3)
        assert db.batches[2] == [2]
        db.release(1)
        db.release(2)
        assert [await t for t in a1 + a2 + b] == [10, 20, 30]

    asyncio.run(scenario())


def test_a_batch_stays_within_capacity_by_weight() -> None:
    async def scenario() -> None:
        db = Statements()
        combiner: Combiner[str, int, int] = Combiner(db.run, capacity=5, weight=lambda r: r, in_flight=1)
        calls = await _calls(combiner, "k", [1, 2, 2, 3, 9])
        for n in range(3):
            await db.started(n + 1)
            db.release(n)
        await asyncio.gather(*calls)
        # a call heavier than the capacity still goes, alone
        assert db.batches == [[1, 2, 2], [3], [9]]

    asyncio.run(scenario())


def test_calls_for_the_same_thing_go_in_separate_statements() -> None:
    async def scenario() -> None:
        db = Statements()
        combiner: Combiner[str, int, int] = Combiner(db.run, capacity=10, distinct=lambda r: r, in_flight=1)
        calls = await _calls(combiner, "k", [1, 2, 3, 2, 4])
        for n in range(2):
            await db.started(n + 1)
            db.release(n)
        await asyncio.gather(*calls)
        assert db.batches == [[1, 2, 3], [2, 4]]

    asyncio.run(scenario())


def test_a_failed_statement_fails_its_calls_only() -> None:
    async def scenario() -> None:
        db = Statements(fail_on=3)
        combiner: Combiner[str, int, int] = Combiner(db.run, capacity=10, in_flight=1)
        first = await _calls(combiner, "k", [1])
        await db.started(1)
        failing = await _calls(combiner, "k", [2, 3])
        db.release(0)
        await db.started(2)
        last = await _calls(combiner, "k", [4])
        db.release(1)
        await db.started(3)
        db.release(2)
        outcomes = await asyncio.gather(*first, *failing, *last, return_exceptions=True)
        assert outcomes[0] == 10
        assert all(isinstance(o, ConnectionError) for o in outcomes[1:3])
        assert outcomes[3] == 40  # the next statement runs as usual
        assert db.batches == [[1], [2, 3], [4]]

    asyncio.run(scenario())


def test_an_answer_that_is_an_error_goes_to_its_own_call() -> None:
    async def scenario() -> None:
        db = Statements(refuse=2)
        combiner: Combiner[str, int, int] = Combiner(db.run, capacity=10)
        calls = await _calls(combiner, "k", [1, 2, 3])
        await db.started(1)
        db.release(0)
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert outcomes[0] == 10 and outcomes[2] == 30
        assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "refused 2"
        assert db.batches == [[1, 2, 3]]

    asyncio.run(scenario())


def test_what_a_cancelled_call_got_goes_to_the_orphan_handler() -> None:
    async def scenario() -> None:
        db = Statements()
        orphans: list[tuple[str, int, int]] = []

        async def orphan(key: str, request: int, answer: int) -> None:
            orphans.append((key, request, answer))

        combiner: Combiner[str, int, int] = Combiner(db.run, capacity=10, orphan=orphan, in_flight=1)
        [running] = await _calls(combiner, "k", [1])
        await db.started(1)
        queued, kept = await _calls(combiner, "k", [2, 3])
        running.cancel()  # its statement is in flight: what it gets goes to the orphan handler
        queued.cancel()  # its statement has not started: it never happens
        db.release(0)
        await db.started(2)
        db.release(1)
        assert await kept == 30
        assert db.batches == [[1], [3]]
        assert orphans == [("k", 1, 10)]
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(scenario())
