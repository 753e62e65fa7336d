"""Queue benchmark on PostgreSQL: lock+complete throughput and lock latency, with pgbench's bound.

    uv run python bench/queue_bench.py [--server URL] [--seconds 5]
        [--skip pgbench throughput latency http_latency long_poll]

Prints one JSON line per figure (see bench/README.md). Everything runs against scratch databases
it creates on the server (`backoffice_bench`, `backoffice_bench_big`, `backoffice_bench_pgbench`),
never against an existing one. Workers are processes, as pgbench's clients are connections.
"""

from __future__ import annotations

import argparse
import glob
import json
import multiprocessing as mp
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backoffice.migrate import upgrade  # noqa: E402
from bench.bench_workers import (  # noqa: E402
    http_latency_worker,
    http_worker,
    latency_worker,
    long_poll_probe,
    psql_pair_script,
    rss_mb,
    seed,
    sidecar,
    storage_worker,
)

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
CONCURRENCY = (1, 4, 8)
TARGETS = {"http_single": 0.2, "http_batch50": 1.0}
PGBENCH_DB = "backoffice_bench_pgbench"


def emit(**figure: Any) -> None:
    """One JSON line per figure."""
    print(json.dumps(figure), flush=True)


def recreate(server: str, name: str) -> str:
    """Drop and create a scratch database; its URL."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def pg_binary(name: str) -> str:
    """A PostgreSQL client binary (pgbench lives beside the server binaries)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise SystemExit(f"{name} not found under /usr/lib/postgresql/*/bin")
    return found[-1]


def pgbench(server: str, bench_dir: Path, seconds: float | None = None) -> float:
    """tasks/s of pgbench's claim+complete with 8 clients on its own scratch database: the
    issue's fixed run (-t 2500), or a probe of `seconds` (-T) on a re-created table."""
    url = make_url(server).set(database=PGBENCH_DB).render_as_string(hide_password=False)
    if seconds is None:
        url = recreate(server, PGBENCH_DB)
    subprocess.run(
        [pg_binary("psql"), "-q", "-v", "ON_ERROR_STOP=1", "-f", str(bench_dir / "pgbench_schema.sql"), url],
        check=True,
        capture_output=True,
    )
    script = str(bench_dir / "pgbench_claim_complete.sql")
    length = ["-t", "2500"] if seconds is None else ["-T", str(max(1, round(seconds)))]
    command = [pg_binary("pgbench"), "-n", "-M", "prepared", "-c", "8", "-j", "2", *length, "-f", script]
    out = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    if not match:
        raise SystemExit(f"cannot read pgbench's tps from:\n{out}")
    return float(match.group(1))


# An idle backend reports its transaction counts within 10 s (PostgreSQL 15+: PGSTAT_IDLE_INTERVAL).
STATS_LAG = 11.0


def commits(url: str) -> int:
    """Transactions committed in the database so far (an autocommit statement is one)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        return int(row[0]) if row else 0


def run_workers(target: Any, workers: int, args: tuple[Any, ...], seconds: float) -> tuple[int, list[Any]]:
    """Start `workers` processes, release them together, and sum what they did in `seconds`."""
    ctx = mp.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    go = ctx.Event()
    procs = [ctx.Process(target=target, args=(*args, seconds, ready, go, results)) for _ in range(workers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=300)  # start-up (imports, connections) is not measured
    go.set()
    done, latencies = 0, []  # latencies: whatever the workers report, concatenated
    for _ in procs:
        count, lat = results.get(timeout=seconds + 300)
        done += count
        latencies += lat
    for p in procs:
        p.join(timeout=60)
    return done, latencies


def throughput(url: str, args: argparse.Namespace, base: float | None) -> dict[str, dict[str, float]]:
    """Figures (a), (b), (c): tasks/s at 1, 4 and 8 workers, each next to a pgbench probe.

    On a shared machine the load moves within minutes; a probe right before each figure
    (`pgbench_adjacent`) gives a ratio measured under the same load as the figure itself.
    """
    best: dict[str, dict[str, float]] = {}
    pending = 40_000

    def measure(name: str, worker: Any, worker_args: tuple[Any, ...], n: int, **extra: Any) -> None:
        seed(url, pending=pending, finished=0)
        probe = pgbench(args.server, args.pgbench_dir, args.seconds) if base else None
        before = commits(url)
        done, _ = run_workers(worker, n, worker_args, args.seconds)
        rate = done / args.seconds
        time.sleep(STATS_LAG)
        extra["commits_per_task"] = round((commits(url) - before) / max(done, 1), 2)
        ratios = {}
        if base and probe:
            ratios = {"vs_pgbench": round(rate / base, 3), "pgbench_adjacent": round(probe, 1)}
            ratios["vs_pgbench_adjacent"] = round(rate / probe, 3)
            entry = best.setdefault(name, {"fixed": 0.0, "adjacent": 0.0})
            entry["fixed"] = max(entry["fixed"], rate / base)
            entry["adjacent"] = max(entry["adjacent"], rate / probe)
        emit(figure=name, workers=n, tasks_per_s=round(rate, 1), **extra, **ratios)

    for n in CONCURRENCY:
        measure("storage_lock_complete", storage_worker, (url, 1), n)
    with sidecar(url, args.http_workers) as (base_url, key, admin, pid):
        peak = RssPeak(pid)
        with peak:
            for name, limit in (("http_single", 1), ("http_batch50", 50)):
                for n in CONCURRENCY:
                    measure(
                        name,
                        http_worker,
                        (base_url, key, limit),
                        n,
                        http_workers=args.http_workers,
                        access_log=False,
                    )
        emit(
            figure="sidecar_rss", largest_process_mb=round(peak.peak, 1), target_mb=150, met=peak.peak <= 150
        )
        if "http_latency" not in args.skip:
            http_latency(url, base_url, key, args)
        if "long_poll" not in args.skip:
            figures = long_poll_probe(base_url, key, admin, polls=300, probes=20)
            for name in ("healthz", "list_tasks"):
                ms = sorted(x * 1000 for x in figures[name])
                emit(
                    figure="answer_during_long_polls",
                    request=name,
                    polls_waiting=figures["polls_waiting"],
                    p50_ms=round(statistics.median(ms), 2),
                    max_ms=round(ms[-1], 2),
                    target_ms=100,
                    met=ms[-1] < 100,
                )
    return best


class RssPeak:
    """The largest resident size of the sidecar's processes, sampled every 0.2 s while in use."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, rss_mb(self.pid))


def http_latency(url: str, base_url: str, key: str, args: argparse.Namespace) -> None:
    """p50 of lock(1) + complete over HTTP with one client, beside the p50 of the same two
    statements run by psql (its timing) on the same database: the overhead of our stack."""
    samples = args.samples
    seed(url, pending=samples * 2 + 200, finished=0)
    _, timings = run_workers(http_latency_worker, 1, (base_url, key, samples), 600)
    http_ms = sorted(x * 1000 for x in timings)
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(psql_pair_script(samples))
        script.flush()
        out = subprocess.run(
            [pg_binary("psql"), "-q", "-X", "-v", "ON_ERROR_STOP=1", "-f", script.name, url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    times = [float(t) for t in re.findall(r"Time: ([\d.]+) ms", out)]
    pairs = sorted(a + b for a, b in zip(times[0::2], times[1::2], strict=False))
    http_p50, psql_p50 = statistics.median(http_ms), statistics.median(pairs)
    emit(
        figure="lock_complete_latency",
        clients=1,
        samples=samples,
        http_p50_ms=round(http_p50, 3),
        http_p99_ms=round(http_ms[min(len(http_ms) - 1, int(len(http_ms) * 0.99))], 3),
        psql_p50_ms=round(psql_p50, 3),
        stack_overhead_p50_ms=round(http_p50 - psql_p50, 3),
    )


def latency(small_url: str, big_url: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Lock latency (one task per call, storage layer, one worker): 1k pending rows versus
    many finished + pending rows, in two databases measured alternately."""
    seed(small_url, pending=1000, finished=0)
    seed(big_url, pending=args.big_pending, finished=args.big_finished)
    _, (small, big) = run_workers(latency_worker, 1, (small_url, big_url, args.samples), 600)
    figures = {}
    for name, lat, pending, finished in (
        ("small", small, 1000, 0),
        ("big", big, args.big_pending, args.big_finished),
    ):
        ms = sorted(x * 1000 for x in lat)
        figures[name] = {"p50": statistics.median(ms), "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))]}
        emit(
            figure="lock_latency",
            pending=pending,
            finished=finished,
            samples=len(ms),
            p50_ms=round(figures[name]["p50"], 3),
            p99_ms=round(figures[name]["p99"], 3),
        )
    return figures


def main() -> None:
    """Run every figure and print the ratios to the targets."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default=os.environ.get("BACKOFFICE_BENCH_SERVER_URL", DEFAULT_SERVER))
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per throughput figure")
    parser.add_argument(
        "--http-workers",
        type=int,
        # PostgreSQL, pgbench and the clients share this machine: the sidecar gets half its cores
        # (measured on 2 cores: 1 worker ~920 tasks/s one task per call, 2 workers ~855).
        default=max(1, (os.cpu_count() or 2) // 2),
        help="uvicorn worker processes [default: half the cores]",
    )
    parser.add_argument("--pgbench-dir", type=Path, default=ROOT.parent / "shared" / "bench")
    parser.add_argument("--big-finished", type=int, default=1_000_000)
    parser.add_argument("--big-pending", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=3000, help="lock calls per latency figure")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["pgbench", "throughput", "latency", "http_latency", "long_poll"],
    )
    args = parser.parse_args()

    url = recreate(args.server, "backoffice_bench")
    upgrade(url)
    base = None
    if "pgbench" not in args.skip:
        base = pgbench(args.server, args.pgbench_dir)
        emit(figure="pgbench_claim_complete", clients=8, tasks_per_s=round(base, 1))
    if "throughput" not in args.skip:
        best = throughput(url, args, base)
        for name, target in TARGETS.items():
            for kind, ratio in best.get(name, {}).items():
                emit(
                    figure="ratio",
                    name=f"{name}_best_vs_pgbench_{kind}",
                    value=round(ratio, 3),
                    target=target,
                    met=ratio >= target,
                )
    if "latency" not in args.skip:
        big_url = recreate(args.server, "backoffice_bench_big")
        upgrade(big_url)
        figures = latency(url, big_url, args)
        for q in ("p50", "p99"):
            ratio = figures["big"][q] / figures["small"][q]
            emit(
                figure="ratio",
                name=f"lock_latency_{q}_big_vs_small",
                value=round(ratio, 3),
                target=1.3,
                met=ratio <= 1.3,
            )


if __name__ == "__main__":
    main()
