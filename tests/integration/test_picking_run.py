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
from tests.fake_lp import BROKEN_PRINTER, install_lp, sent_files
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


# --- no order leaves "to pick" without paper ----------------------------------------------------


def only_printable(fake: FakeShoptet, count: int) -> list[str]:
    """Keep `count` orders, each with a complete (billing) address, so every one is printed."""
    fake.state.orders = dict(list(fake.state.orders.items())[:count])
    for order in fake.state.orders.values():
        order["deliveryAddress"] = None
    return list(fake.state.orders)


def test_an_undelivered_order_is_taken_over_at_once_with_its_file(claims: PickingStore) -> None:
    claims.claim(["A", "B"], "morning", "run-1")
    claims.mark_undelivered(["A", "B"], "run-1", "PPL", "/tmp/a.pdf", "lp: no such printer")
    row = claims.get("A")
    assert row is not None and (row["status"], row["pdf_path"], row["times_printed"]) == (
        "undelivered",
        "/tmp/a.pdf",
        0,
    )

    taken = claims.claim(["A", "B"], "noon", "run-2")

    assert [(c.order_code, c.undelivered_file, c.shipping, c.needs_print) for c in taken] == [
        ("A", "/tmp/a.pdf", "PPL", False),
        ("B", "/tmp/a.pdf", "PPL", False),
    ]
    row = claims.get("A")
    assert row is not None and (row["status"], row["run_id"]) == ("undelivered", "run-2")


def test_a_refused_print_moves_nothing_and_the_next_run_sends_the_same_file(
    fake: FakeShoptet,
    client: ShoptetClient,
    claims: PickingStore,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = install_lp(tmp_path, monkeypatch)
    codes = only_printable(fake, 6)
    broken = settings.model_copy(update={"printer": BROKEN_PRINTER})

    first = print_picking_lists(client, claims, broken, "morning", "run-1")

    assert not first.ok and first.files and first.moved == []
    assert fake.state.status_changes == []  # every order is still "to pick"
    assert sorted(code for f in first.files for code in f.orders) == sorted(codes)
    for f in first.files:
        assert f.path.is_file() and f.printer_error and f.printed_on is None
        assert any(str(f.path) in problem for problem in first.problems)
        for code in f.orders:
            row = claims.get(code)
            assert row is not None and (row["status"], row["pdf_path"]) == ("undelivered", str(f.path))
    assert "sends this file again" in result_markdown(first, "morning")
    pdfs = sorted(f.path for f in first.files)

    working = settings.model_copy(update={"printer": "sklad"})
    second = print_picking_lists(client, claims, working, "noon", "run-2")

    assert second.ok and sorted(second.moved) == sorted(codes)
    # The same files went to the printer; no new one was written.
    assert sorted(f.path for f in second.files) == pdfs
    assert sorted(sent_files(log, "sklad")) == [str(p) for p in pdfs]
    assert sorted((settings.output_dir / "picking").rglob("*.pdf")) == pdfs
    assert sorted(fake.state.status_changes) == sorted((code, 26) for code in codes)
    assert {claims.get(code)["times_printed"] for code in codes} == {1}  # type: ignore[index]


def test_an_undelivered_file_that_is_gone_is_printed_afresh(
    fake: FakeShoptet,
    client: ShoptetClient,
    claims: PickingStore,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = install_lp(tmp_path, monkeypatch)
    codes = only_printable(fake, 3)
    first = print_picking_lists(
        client, claims, settings.model_copy(update={"printer": BROKEN_PRINTER}), "morning", "run-1"
    )
    for f in first.files:
        f.path.unlink()  # someone tidied the output folder

    second = print_picking_lists(
        client, claims, settings.model_copy(update={"printer": "sklad"}), "noon", "run-2"
    )

    assert second.ok and sorted(second.moved) == sorted(codes)
    assert sorted(sent_files(log, "sklad")) == sorted(str(f.path) for f in second.files)
    assert all(f.path.is_file() for f in second.files)


def test_a_retry_of_the_same_run_takes_over_its_own_claims(
    fake: FakeShoptet, client: ShoptetClient, claims: PickingStore, settings: Settings
) -> None:
    codes = only_printable(fake, 4)
    # The first attempt of flow run "run-1" claimed every order, printed the first, then died.
    claims.claim(codes, "morning", "run-1")
    claims.mark_printed(codes[:1], "run-1", "PPL", "/tmp/first.pdf")
    other = print_picking_lists(client, claims, settings, "noon", "run-2")
    assert other.files == [] and sorted(other.held_elsewhere) == sorted(codes)

    retry = print_picking_lists(client, claims, settings, "morning", "run-1")

    assert retry.ok and retry.held_elsewhere == []
    assert sorted(code for f in retry.files for code in f.orders) == sorted(codes[1:])
    assert sorted(retry.moved) == sorted(codes)  # the printed one is only moved
    assert sorted(fake.state.status_changes) == sorted((code, 26) for code in codes)
