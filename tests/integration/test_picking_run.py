"""Picking-list claims and runs on both databases, against the fake Shoptet over real HTTP."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from backoffice.integrations.fakes.shoptet import DEFAULT_TOKEN, FakeShoptet
from backoffice.integrations.shoptet import ShoptetClient
from backoffice.settings import Settings
from backoffice.warehouse.picking import parse_order
from backoffice.warehouse.picking_run import print_picking_lists, result_markdown
from backoffice.warehouse.picking_store import CLAIM_LEASE, PickingStore
from tests.servers import serve


@pytest.fixture
def claims(engine: Engine) -> PickingStore:
    """The claim store on the test database."""
    return PickingStore(engine)


@pytest.fixture
def fake() -> FakeShoptet:
    """A fake Shoptet with 24 orders to pick, some with an incomplete address."""
    return FakeShoptet(5, orders=24)


@pytest.fixture
def client(fake: FakeShoptet) -> Iterator[ShoptetClient]:
    """A real client of the served fake with fast retries."""
    with serve(fake.app) as url, ShoptetClient(url, DEFAULT_TOKEN, backoff_base=0.01) as client:
        yield client


def codes_of(claimed: list[object]) -> list[str]:
    return [c.order_code for c in claimed]  # type: ignore[attr-defined]


# --- claims ------------------------------------------------------------------------------------


def test_a_claimed_order_is_not_claimed_again(claims: PickingStore) -> None:
    first = claims.claim(["A", "B"], "morning", "run-1")
    assert codes_of(first) == ["A", "B"] and all(c.previous is None and c.needs_print for c in first)
    assert codes_of(claims.claim(["B", "C", "C"], "morning", "run-2")) == ["C"]
    row = claims.get("B")
    assert row is not None and row["run_id"] == "run-1" and row["status"] == "claimed"


def test_takeover_rules(claims: PickingStore) -> None:
    past = datetime.now(UTC) - CLAIM_LEASE - timedelta(minutes=1)
    claims.claim(["stale", "printed", "done"], "morning", "dead-run", now=past)
    claims.claim(["fresh"], "morning", "live-run")
    claims.mark_printed(["printed"], "dead-run", "PPL", "/tmp/x.pdf")
    claims.finish("done", "dead-run", "done")

    got = {c.order_code: c for c in claims.claim(["stale", "printed", "done", "fresh"], "noon", "run-3")}
    assert set(got) == {"stale", "printed", "done"}
    assert got["printed"].needs_print is False and got["printed"].times_printed == 1
    assert got["done"].previous == "done" and got["done"].needs_print
    # Letting the order go restores what it was: an order printed before stays marked so.
    claims.release("done", "run-3", got["done"].release_status)
    row = claims.get("done")
    assert row is not None and row["status"] == "done"
    # A run at work keeps what it printed; what it gave up on is taken over at once.
    claims.claim(["busy", "unmoved"], "noon", "run-4")
    claims.mark_printed(["busy", "unmoved"], "run-4", "GLS", "/tmp/y.pdf")
    claims.give_up_move("unmoved", "run-4", "Shoptet said no")
    taken = claims.claim(["busy", "unmoved"], "noon", "run-5")
    assert [(c.order_code, c.needs_print) for c in taken] == [("unmoved", False)]
    # Another run's bookkeeping cannot touch a claim it does not hold.
    claims.finish("fresh", "run-3", "done")
    fresh = claims.get("fresh")
    assert fresh is not None and fresh["status"] == "claimed"


def test_racing_runs_claim_each_order_exactly_once(claims: PickingStore) -> None:
    codes = [f"2024{n:06d}" for n in range(60)]

    def run(n: int) -> list[str]:
        # Each run sees the list in its own order, as overlapping listings would.
        mine = codes[n % 7 :] + codes[: n % 7]
        return codes_of(claims.claim(mine, "morning", f"run-{n}"))

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(run, range(6)))
    claimed = [code for result in results for code in result]
    assert sorted(claimed) == codes


# --- the run ------------------------------------------------------------------------------------


def test_run_prints_every_order_once_and_moves_it(
    fake: FakeShoptet, client: ShoptetClient, claims: PickingStore, settings: Settings
) -> None:
    details = {code: parse_order(o) for code, o in fake.state.orders.items()}
    incomplete = {code for code, o in details.items() if o.address_problems}
    assert incomplete and len(incomplete) < len(details), "the fake should mix good and bad addresses"

    result = print_picking_lists(client, claims, settings, "morning", "run-1")

    assert result.ok
    printed = [code for f in result.files for code in f.orders]
    assert sorted(printed) == sorted(set(details) - incomplete)
    assert {o.code for o in result.to_check} == incomplete
    assert sorted(result.moved) == sorted(printed)
    for f in result.files:
        assert f.path.is_file() and f.path.parent.parent == settings.output_dir / "picking"
        assert {details[code].shipping for code in f.orders} == {f.shipping}
        assert f.printed_on is None and f.printer_error is None
    assert sorted(fake.state.status_changes) == sorted(
        [(code, 26) for code in printed] + [(code, 35) for code in incomplete]
    )
    assert {claims.get(code)["status"] for code in printed} == {"done"}  # type: ignore[index]
    assert {claims.get(code)["status"] for code in incomplete} == {"check"}  # type: ignore[index]
    markdown = result_markdown(result, "morning")
    assert all(f.path.as_uri() in markdown for f in result.files)
    assert all(code in markdown for code in incomplete)

    again = print_picking_lists(client, claims, settings, "morning", "run-2")
    assert again.files == [] and again.to_check == [] and len(fake.state.status_changes) == len(details)


def test_a_failed_status_move_is_only_retried_not_reprinted(
    fake: FakeShoptet, client: ShoptetClient, claims: PickingStore, settings: Settings
) -> None:
    fake.state.orders = dict(list(fake.state.orders.items())[:3])
    for order in fake.state.orders.values():
        order["deliveryAddress"] = None  # the billing address is complete
    fake.fail_next("/api/orders/", 400, method="PATCH")  # the first move is refused

    first = print_picking_lists(client, claims, settings, "morning", "run-1")
    assert not first.ok and len(first.errors) == 1 and len(first.moved) == 2
    stuck = first.errors[0].split(":")[0]
    assert claims.get(stuck)["status"] == "unmoved"  # type: ignore[index]

    second = print_picking_lists(client, claims, settings, "noon", "run-2")
    assert second.ok and second.files == [] and second.moved == [stuck]
    assert fake.state.orders[stuck]["status"]["id"] == 26


def test_lp_gets_each_file_and_a_failing_printer_fails_the_run(
    fake: FakeShoptet,
    client: ShoptetClient,
    claims: PickingStore,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bin_dir, log = tmp_path / "bin", tmp_path / "lp.log"
    bin_dir.mkdir()
    lp = bin_dir / "lp"
    # A stand-in for CUPS' lp: logs its arguments; refuses printer "broken" like lp does.
    lp.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {log}\n'
        '[ "$2" != broken ] || { echo "lp: The printer or class does not exist." >&2; exit 1; }\n'
    )
    lp.chmod(lp.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    fake.state.orders = dict(list(fake.state.orders.items())[:8])

    ok = print_picking_lists(
        client, claims, settings.model_copy(update={"printer": "sklad"}), "morning", "r1"
    )
    assert ok.ok and ok.files and all(f.printed_on == "sklad" for f in ok.files)
    assert sorted(log.read_text().splitlines()) == sorted(
        f"-d sklad -t Picking {f.shipping} morning {f.path}" for f in ok.files
    )

    for order in fake.state.orders.values():
        order["status"] = {"id": -2, "name": "Vyřizuje se"}
    broken = settings.model_copy(update={"printer": "broken"})
    failed = print_picking_lists(client, claims, broken, "noon", "r2")
    assert not failed.ok and failed.files
    assert all(
        f.printer_error and "does not exist" in f.printer_error and f.path.is_file() for f in failed.files
    )
