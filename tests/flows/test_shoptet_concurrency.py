"""Shoptet's 3 connections are per token: flow runs in separate processes share them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from backoffice.integrations.fakes.shoptet import FakeShoptet
from backoffice.integrations.shoptet_slots import MAX_CONNECTIONS_PER_TOKEN, SHOPTET_CONCURRENCY_LIMIT
from backoffice.jobs.catalog import PROJECT_DIR
from backoffice.jobs.deploy import ensure_shoptet_limit
from backoffice.jobs.prefect_api import api_url
from flows.import_shoptet_invoices import import_shoptet_invoices
from tests.deployments.conftest import prefect

pytestmark = [pytest.mark.prefect]

DAY = date(2024, 5, 6)
ENTRYPOINT = "flows/import_shoptet_invoices.py:import_shoptet_invoices"
WAIT_SECONDS = 240.0  # a guard against a hang, not a timing assertion


@pytest.fixture
def fake() -> FakeShoptet:
    """A fake Shoptet with enough invoices of each currency for 3 detail requests per run."""
    return FakeShoptet(seed=5, days=[DAY], invoices_per_day=16, eur_share=0.5)


@pytest.fixture
def shoptet_limit(prefect_server: None) -> Iterator[None]:
    """The `shoptet-api` limit as `backoffice deploy` makes it; removed after, as other tests run without."""
    prefect(ensure_shoptet_limit)
    yield
    prefect(lambda c: c.delete_global_concurrency_limit_by_name(SHOPTET_CONCURRENCY_LIMIT))


def _start(flow_run_id: UUID, log: Path) -> subprocess.Popen[bytes]:
    """Run a flow run in a process of its own, as a process worker does (`python -m prefect.engine`)."""
    env = {
        **os.environ,  # the BACKOFFICE_* test settings (use_settings)
        "PREFECT_API_URL": str(api_url()),
        "PREFECT__FLOW_RUN_ID": str(flow_run_id),
        "PREFECT__FLOW_ENTRYPOINT": ENTRYPOINT,
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "prefect.engine"], cwd=PROJECT_DIR, env=env, stdout=out, stderr=out
        )


def _active_slots() -> int:
    limit: Any = prefect(lambda c: c.read_global_concurrency_limit_by_name(SHOPTET_CONCURRENCY_LIMIT))
    return int(limit.active_slots)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("use_settings", "shoptet_limit")
def test_two_flow_runs_in_two_processes_share_three_connections(fake: FakeShoptet, tmp_path: Path) -> None:
    currencies = {"CZK", "EUR"}
    for currency in currencies:  # each run alone would open all 3 of its process's connections
        per_day = [i for i in fake.state.invoices.values() if i["price"]["currencyCode"] == currency]
        assert len(per_day) >= MAX_CONNECTIONS_PER_TOKEN, currency
    # Invoice details wait at the gate (counted as open) until the test opens it.
    gate = fake.hold("/api/invoices/")
    runs = {
        currency: prefect(
            lambda c, cur=currency: c.create_flow_run(
                import_shoptet_invoices, parameters={"currency": cur, "day": DAY}
            )
        )
        for currency in currencies
    }
    processes = {cur: _start(run.id, tmp_path / f"{cur}.log") for cur, run in runs.items()}
    try:
        # Without a shared limit the two processes open up to 6 at once: the fake sees a 4th.
        # With it, 3 wait at the gate holding all 3 slots, and the others wait for a slot.
        deadline = time.monotonic() + WAIT_SECONDS
        while fake.state.max_concurrency_seen <= MAX_CONNECTIONS_PER_TOKEN and not (
            gate.held == MAX_CONNECTIONS_PER_TOKEN and _active_slots() == MAX_CONNECTIONS_PER_TOKEN
        ):
            exited = {cur: p.returncode for cur, p in processes.items() if p.poll() is not None}
            assert not exited, f"a flow run ended early: {exited}, see {tmp_path}"
            assert time.monotonic() < deadline, f"held {gate.held}, see {tmp_path}"
            time.sleep(0.05)  # polling the fake's counters; nothing races this sleep
    finally:
        gate.open()
        codes = {cur: p.wait(timeout=WAIT_SECONDS) for cur, p in processes.items()}

    logs = {cur: (tmp_path / f"{cur}.log").read_text(errors="replace")[-2000:] for cur in currencies}
    assert codes == {"CZK": 0, "EUR": 0}, logs
    for run in runs.values():
        state = prefect(lambda c, run_id=run.id: c.read_flow_run(run_id)).state
        assert state.is_completed(), (state, logs)
    assert fake.state.max_concurrency_seen <= MAX_CONNECTIONS_PER_TOKEN
    assert fake.state.count("GET", "/api/invoices", status=429) == 0
    assert _active_slots() == 0  # every slot given back
