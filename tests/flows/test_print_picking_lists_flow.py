"""print-picking-lists under the Prefect harness, against the fake Shoptet over HTTP, on both databases."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prefect.artifacts import Artifact
from pypdf import PdfReader

from backoffice.integrations.fakes.shoptet import FakeShoptet
from backoffice.settings import Settings, get_settings
from backoffice.warehouse.picking import format_quantity, parse_order, summarize
from backoffice.warehouse.picking_run import PickingResult
from flows.print_picking_lists import print_picking_lists
from tests.fake_lp import BROKEN_PRINTER, install_lp, sent_files
from tests.servers import serve

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def fake() -> FakeShoptet:
    """A fake Shoptet with 14 orders to pick over four shipping methods."""
    return FakeShoptet(8, orders=14)


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def picking_pdfs(settings: Settings) -> list[Path]:
    return sorted((settings.output_dir / "picking").rglob("*.pdf"))


@pytest.mark.usefixtures("use_settings")
def test_pdfs_hold_every_order_and_the_summary_and_orders_move_on(
    fake: FakeShoptet, settings: Settings
) -> None:
    orders = {code: parse_order(detail) for code, detail in fake.state.orders.items()}
    to_check = {code for code, o in orders.items() if o.address_problems}
    to_print = set(orders) - to_check
    assert to_check and to_print

    result = print_picking_lists("morning")

    assert isinstance(result, PickingResult) and result.ok
    files = picking_pdfs(settings)
    assert sorted(f.path for f in result.files) == files
    for f in result.files:
        text = pdf_text(f.path)
        group = [orders[code] for code in f.orders]
        assert f"Vychystávání: {f.shipping}" in text
        for order in group:
            assert order.code in text and order.customer in text
            for item in order.items:
                assert item.code in text and item.name in text
        assert "Souhrn podle produktu" in text
        summary_page = PdfReader(f.path).pages[-1].extract_text()
        for line in summarize(group):
            row = f"{line.code} {line.name} {line.variant or ''}".replace("  ", " ").strip()
            assert f"{row} {format_quantity(line.quantity)} {line.orders}" in summary_page
    printed = [code for f in result.files for code in f.orders]
    assert sorted(printed) == sorted(to_print)
    for code in to_print:
        assert fake.state.orders[code]["status"]["id"] == 26
    for code in to_check:
        assert fake.state.orders[code]["status"]["id"] == 35
    assert sorted(o.code for o in result.to_check) == sorted(to_check)

    artifact = Artifact.get("picking-lists-morning")
    assert artifact is not None and isinstance(artifact.data, str)
    markdown = artifact.data
    assert all(f.path.as_uri() in markdown for f in result.files)
    assert all(code in markdown for code in to_check)


class ListingBarrier:
    """In front of the fake: holds each order listing until `parties` runs have asked for one.

    So the runs surely overlap: both have listed the same orders before either claims any.
    """

    def __init__(self, app: Any, parties: int, timeout: float = 120.0) -> None:
        self.app, self.parties, self.timeout, self.arrived = app, parties, timeout, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/api/orders":
            self.arrived += 1
            waited = 0.0
            while self.arrived < self.parties and waited < self.timeout:
                await asyncio.sleep(0.01)
                waited += 0.01
        await self.app(scope, receive, send)


@pytest.mark.usefixtures("use_settings")
def test_two_overlapping_runs_never_print_an_order_twice(
    fake: FakeShoptet, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.latency = 0.02  # every request takes a while, so the runs interleave further
    barrier = ListingBarrier(fake.app, parties=2)
    results: list[Any] = []
    start = threading.Barrier(2)

    def run(batch: str) -> None:
        start.wait()
        results.append(print_picking_lists(batch, force=True))

    with serve(barrier) as url:
        monkeypatch.setenv("BACKOFFICE_SHOPTET_BASE_URL", url)
        get_settings.cache_clear()
        threads = [threading.Thread(target=run, args=(batch,)) for batch in ("morning", "noon")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=240)

    assert len(results) == 2 and all(isinstance(r, PickingResult) and r.ok for r in results)
    assert barrier.arrived == 2
    # Both listed every order; each order went to one run, the other met it held or let it go.
    assert any(r.held_elsewhere or r.released for r in results)
    printed = Counter(code for r in results for f in r.files for code in f.orders)
    to_print = {code for code, d in fake.state.orders.items() if not parse_order(d).address_problems}
    assert set(printed) == to_print and max(printed.values()) == 1
    in_pdfs = Counter(
        code for path in picking_pdfs(settings) for code in fake.state.orders if code in pdf_text(path)
    )
    assert in_pdfs == printed
    moves = Counter(code for code, status in fake.state.status_changes if status == 26)
    assert set(moves) == set(printed) and max(moves.values()) == 1


@pytest.mark.usefixtures("use_settings")
def test_a_rerun_prints_nothing_new(fake: FakeShoptet, settings: Settings) -> None:
    first = print_picking_lists("morning")
    assert isinstance(first, PickingResult) and first.files
    requests_before = len(fake.state.status_changes)

    second = print_picking_lists("noon")

    assert isinstance(second, PickingResult) and second.files == [] and second.to_check == []
    assert len(fake.state.status_changes) == requests_before
    assert len(picking_pdfs(settings)) == len(first.files)


@pytest.mark.usefixtures("use_settings")
def test_missing_token_fails_at_once_naming_it(
    fake: FakeShoptet, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BACKOFFICE_SHOPTET_API_TOKEN")
    get_settings.cache_clear()

    state = print_picking_lists("morning", return_state=True)

    assert state.is_failed() and "BACKOFFICE_SHOPTET_API_TOKEN" in str(state.message)
    assert fake.state.requests == [] and picking_pdfs(settings) == []


def use_printer(monkeypatch: pytest.MonkeyPatch, printer: str) -> None:
    """Make the next flow run print on `printer`."""
    monkeypatch.setenv("BACKOFFICE_PRINTER", printer)
    get_settings.cache_clear()


@pytest.mark.usefixtures("use_settings")
def test_a_refused_print_fails_naming_the_file_and_the_next_run_sends_it_again(
    fake: FakeShoptet, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = install_lp(tmp_path, monkeypatch)
    to_print = {code for code, d in fake.state.orders.items() if not parse_order(d).address_problems}
    use_printer(monkeypatch, BROKEN_PRINTER)

    state = print_picking_lists("morning", return_state=True)

    assert state.is_failed()
    files = picking_pdfs(settings)
    assert files and all(str(path) in str(state.message) for path in files)
    assert not [code for code, status in fake.state.status_changes if status == 26]

    use_printer(monkeypatch, "sklad")
    result = print_picking_lists("noon")

    assert isinstance(result, PickingResult) and result.ok
    assert picking_pdfs(settings) == files  # the same files, none written anew
    assert sorted(sent_files(log, "sklad")) == [str(path) for path in files]
    moves = Counter(code for code, status in fake.state.status_changes if status == 26)
    assert set(moves) == to_print and max(moves.values()) == 1


class OnSecondListing:
    """In front of the fake: calls `then` when the second order listing arrives (a retry's)."""

    def __init__(self, app: Any, then: Any) -> None:
        self.app, self.then, self.listings = app, then, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/api/orders":
            self.listings += 1
            if self.listings == 2:
                self.then()
        await self.app(scope, receive, send)


@pytest.mark.usefixtures("use_settings")
def test_a_retry_of_a_crashed_run_prints_what_the_crash_left_claimed(
    fake: FakeShoptet, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    to_print = {code for code, d in fake.state.orders.items() if not parse_order(d).address_problems}
    # A file where the picking folder belongs: the first attempt dies after claiming the orders.
    blocker = settings.output_dir / "picking"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    gate = OnSecondListing(fake.app, then=blocker.unlink)

    with serve(gate) as url:
        monkeypatch.setenv("BACKOFFICE_SHOPTET_BASE_URL", url)
        get_settings.cache_clear()
        retrying = print_picking_lists.with_options(retries=1, retry_delay_seconds=0)
        state = retrying("morning", return_state=True)

    assert gate.listings == 2  # the first attempt and its retry, one flow run
    assert state.is_completed()
    result = state.result()
    assert isinstance(result, PickingResult) and result.ok and result.held_elsewhere == []
    assert {code for f in result.files for code in f.orders} == to_print
    moves = Counter(code for code, status in fake.state.status_changes if status == 26)
    assert set(moves) == to_print and max(moves.values()) == 1
