"""Plan regression (PostgreSQL): the claim statement walks the partial claim index, with a
custom plan and with the generic plan a prepared statement switches to after a few runs.

The statement is the claim part of the lock (`load_sql("claim_postgresql")`, the `ready` CTE of
lock_postgresql.sql, which the product sends: test_hot_path_plan.py). A control case
proves the check can fail: with the statuses as bound parameters, the generic plan cannot use
the partial index (the planner cannot prove the index predicate from an unknown value).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.sql import Literal
from sqlalchemy.engine import make_url

from backoffice.queue.claim import load_sql

pytestmark = pytest.mark.postgres

ROWS = 20_000
CLAIM_INDEX = "ix_tasks_claim"
# SQLAlchemy's rule for `:name` bind parameters in text() (not `::casts`).
BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")


def without_comments(sql: str) -> str:
    """`sql` without its `--` comments (they mention :names that are not parameters)."""
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def numbered(sql: str) -> tuple[str, list[str]]:
    """`sql` with its `:name` parameters as $1, $2, … (for PREPARE) and the names in that order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return BIND.sub(number, without_comments(sql)), names


def claim_params() -> dict[str, Any]:
    """Parameters of one claim of up to 10 tasks."""
    now = datetime.now(UTC)
    until = now + timedelta(minutes=10)
    return {
        "task_type": "EshopExport",
        "limit": 10,
        "actor": "worker",
        "now": now,
        "locked_until": until,
        "locked_until_text": until.isoformat(),
    }


def node_types(plan: Any) -> set[str]:
    """Every node type of an EXPLAIN (FORMAT JSON) plan."""
    if isinstance(plan, list):
        return set().union(*(node_types(p) for p in plan))
    if isinstance(plan, dict):
        own = {plan["Node Type"]} if "Node Type" in plan else set()
        return own.union(*(node_types(v) for v in plan.values() if isinstance(v, (dict, list))))
    return set()


def index_names(plan: Any) -> set[str]:
    """Every index an EXPLAIN (FORMAT JSON) plan reads."""
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Index Name" in plan:
            found.add(plan["Index Name"])
        for value in plan.values():
            found |= index_names(value)
    elif isinstance(plan, list):
        for value in plan:
            found |= index_names(value)
    return found


@pytest.fixture
def conn(postgres_database: str) -> Iterator[psycopg.Connection[Any]]:
    """A psycopg connection to the worker's migrated test database, tasks emptied."""
    url = make_url(postgres_database).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE tasks, task_events")
        yield conn
        conn.execute("TRUNCATE tasks, task_events")


def fill(conn: psycopg.Connection[Any], finished_share: float) -> None:
    """ROWS tasks over four types, `finished_share` of them completed or failed, then ANALYZE."""
    finished = int(ROWS * finished_share)
    conn.execute(
        """
        INSERT INTO tasks (id, task_type, data, status, priority, available_at, attempts, max_attempts,
                           version, created_at, created_by, updated_at, updated_by)
        SELECT gen_random_uuid(),
               (ARRAY['EshopExport', 'Invoice', 'Stock', 'Mail'])[1 + g %% 4],
               '{}'::jsonb,
               CASE WHEN g < %(finished)s THEN (CASE WHEN g %% 10 = 0 THEN 'failed' ELSE 'completed' END)
                    WHEN g %% 50 = 0 THEN 'expired'
                    ELSE 'pending' END,
               g %% 3, now() - interval '1 hour' + g * interval '1 ms', 1, 5,
               1, now(), 'seed', now(), 'seed'
        FROM generate_series(0, %(rows)s - 1) AS g
        """,
        {"finished": finished, "rows": ROWS},
    )
    conn.execute("ANALYZE tasks")


def explain_custom(conn: psycopg.Connection[Any]) -> Any:
    """EXPLAIN of the claim with its parameter values known to the planner."""
    sql = BIND.sub(r"%(\1)s", without_comments(load_sql("claim_postgresql")))
    row = conn.execute(f"EXPLAIN (FORMAT JSON) {sql}", claim_params()).fetchone()
    assert row is not None
    return row[0]


def explain_generic(conn: psycopg.Connection[Any], sql_text: str, extra: dict[str, Any]) -> Any:
    """EXPLAIN EXECUTE of the claim PREPAREd, under plan_cache_mode = force_generic_plan."""
    sql, names = numbered(sql_text)
    params = {**claim_params(), **extra}
    values = ", ".join(Literal(params[n]).as_string(conn) for n in names)
    conn.execute("SET plan_cache_mode = force_generic_plan")
    try:
        conn.execute(f"PREPARE claim_plan AS {sql}")
        row = conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE claim_plan({values})").fetchone()
        assert row is not None
        plan = row[0]
    finally:
        conn.execute("DEALLOCATE ALL")
        conn.execute("RESET plan_cache_mode")
    return plan


@pytest.mark.parametrize("finished_share", [0.0, 0.9], ids=["all-pending", "90pct-finished"])
def test_claim_uses_the_claim_index(conn: psycopg.Connection[Any], finished_share: float) -> None:
    """Custom and generic plans of the claim both read ix_tasks_claim, in order (no sort)."""
    fill(conn, finished_share)
    custom = explain_custom(conn)
    generic = explain_generic(conn, load_sql("claim_postgresql"), {})
    for plan in (custom, generic):
        assert CLAIM_INDEX in index_names(plan), json.dumps(plan, indent=1)
        assert "Sort" not in node_types(plan), json.dumps(plan, indent=1)


def test_bound_statuses_lose_the_index_in_the_generic_plan(conn: psycopg.Connection[Any]) -> None:
    """Control: the same claim with bound statuses cannot use the partial index when generic."""
    fill(conn, 0.9)
    literal = "status IN ('pending', 'expired')"
    sql = load_sql("claim_postgresql")
    assert literal in sql
    bound = sql.replace(literal, "status IN (:status_a, :status_b)")
    plan = explain_generic(conn, bound, {"status_a": "pending", "status_b": "expired"})
    assert CLAIM_INDEX not in index_names(plan)
