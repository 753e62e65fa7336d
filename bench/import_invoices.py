"""Benchmark: import 10,000 Shoptet invoices from the fake (50 per page) into PostgreSQL.

    uv run python bench/import_invoices.py [--invoices 10000] [--database-url postgresql://...]

The fake Shoptet runs in its own process (as the real one is remote), so the import competes
with it only for the CPU, not for one interpreter. Prints invoices/s and where the time goes:
HTTP (list + details, 3 connections), parsing, database (upsert in batches of 500).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backoffice.accounting.shoptet_import import ImportReport, import_invoices
from backoffice.db import create_db_engine
from backoffice.integrations.fakes.shoptet import DEFAULT_TOKEN
from backoffice.integrations.shoptet import ShoptetClient
from backoffice.migrate import upgrade
from backoffice.settings import Settings
from tests import pg
from tests.servers import free_port

DAY = date(2024, 5, 6)


def start_fake(invoices: int) -> tuple[subprocess.Popen[bytes], str]:
    """The fake Shoptet with `invoices` CZK invoices on DAY, in a child process; waits until it answers."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "backoffice.integrations.fakes.shoptet",
        "--port",
        str(port),
        "--day",
        DAY.isoformat(),
    ]
    command += ["--invoices-per-day", str(invoices), "--eur-share", "0"]
    process = subprocess.Popen(command)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base_url}/api/invoices/0", headers={"Shoptet-Private-API-Token": DEFAULT_TOKEN})
            return process, base_url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the fake Shoptet did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU seconds used so far by all PostgreSQL server processes (0 when they are not visible)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().split(" ", 2)[1] in ("(postgres)", "(postmaster)"):
                total += cpu_seconds(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return total


@dataclass
class Run:
    """One import's report and what it cost."""

    report: ImportReport
    seconds: float
    requests: int
    cpu: dict[str, float]


def run(base_url: str, database_url: str, fake_pid: int) -> Run:
    """One import of DAY's CZK invoices, with the CPU used by us, the fake and PostgreSQL."""
    engine = create_db_engine(Settings(database_url=database_url))
    try:
        with ShoptetClient(base_url, DEFAULT_TOKEN) as client:
            cpu = (time.process_time(), cpu_seconds(fake_pid), postgres_cpu_seconds())
            started = time.perf_counter()
            report = import_invoices(client, engine, DAY, "CZK")
            seconds = time.perf_counter() - started
            used = {
                "import (client, parsing, SQLAlchemy)": time.process_time() - cpu[0],
                "fake Shoptet": cpu_seconds(fake_pid) - cpu[1],
                "PostgreSQL": postgres_cpu_seconds() - cpu[2],
            }
            return Run(report, seconds, client.stats.requests, used)
    finally:
        engine.dispose()


def show(title: str, result: Run) -> None:
    """Print one run's figures."""
    report, seconds, requests = result.report, result.seconds, result.requests
    t = report.timings
    print(f"\n{title}")
    print(
        f"  invoices: {report.fetched} (imported {report.imported}, updated {report.updated}, "
        f"unchanged {report.unchanged}), HTTP requests: {requests}"
    )
    print(f"  total: {seconds:.1f} s = {report.fetched / seconds:.0f} invoices/s")
    phases = (
        ("HTTP (list + details)", t.http),
        ("parsing", t.parsing),
        ("database (overlapped)", t.database),
    )
    for name, value in phases:
        print(f"    {name:<22} {value:6.1f} s  {100 * value / seconds:5.1f} % of the wall time")
    print(f"  CPU used (2 cores, shared): {sum(result.cpu.values()):.1f} s")
    for name, value in result.cpu.items():
        print(f"    {name:<38} {value:6.1f} s")


def main() -> None:
    """Start the fake, import twice (fresh, then unchanged), print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: a fresh local one)")
    args = parser.parse_args()
    database_url = args.database_url or pg.recreate_database(pg.server_url(), "backoffice_bench")
    upgrade(database_url)
    generating = time.perf_counter()
    process, base_url = start_fake(args.invoices)
    print(f"fake Shoptet with {args.invoices} invoices up in {time.perf_counter() - generating:.1f} s")
    try:
        print(f"load average before: {os.getloadavg()[0]:.1f}")
        show("first import (everything new)", run(base_url, database_url, process.pid))
        show("re-import (nothing changed)", run(base_url, database_url, process.pid))
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
