"""Plan regression (PostgreSQL) of the hot path's one-statement lock (sql/lock_postgresql.sql):
its claim part reads the partial claim index and its sweep part the lock-expiry index, with a
custom plan and with the generic plan psycopg's prepared statement switches to after 5 runs.
(The claim part is the claim_postgresql.sql query; test_claim_plan.py has the control case.)
"""

from __future__ import annotations

import json
import re
from typing import Any

import psycopg
import pytest
from psycopg.sql import Literal

from backoffice.queue.async_store import _statement
from tests.integration.test_claim_plan import claim_params, conn, fill, index_names

pytestmark = pytest.mark.postgres

__all__ = ["conn"]  # the fixture, shared with test_claim_plan.py
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def lock_sql() -> str:
    """The statement without its `--` comments."""
    return "\n".join(line.split("--", 1)[0] for line in _statement("lock_postgresql").splitlines())


def explain(conn: psycopg.Connection[Any], generic: bool) -> Any:
    """EXPLAIN of the lock statement: values known (custom), or PREPAREd under a forced generic plan."""
    params = claim_params()
    if not generic:
        row = conn.execute(f"EXPLAIN (FORMAT JSON) {lock_sql()}", params).fetchone()
        assert row is not None
        return row[0]
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    sql = PLACEHOLDER.sub(number, lock_sql())
    values = ", ".join(Literal(params[n]).as_string(conn) for n in names)
    conn.execute("SET plan_cache_mode = force_generic_plan")
    try:
        conn.execute(f"PREPARE lock_plan AS {sql}")
        row = conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE lock_plan({values})").fetchone()
        assert row is not None
        return row[0]
    finally:
        conn.execute("DEALLOCATE ALL")
        conn.execute("RESET plan_cache_mode")


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize("finished_share", [0.0, 0.9], ids=["all-pending", "90pct-finished"])
def test_lock_statement_uses_both_partial_indexes(
    conn: psycopg.Connection[Any], finished_share: float, generic: bool
) -> None:
    """The claim reads ix_tasks_claim and the sweep ix_tasks_lock_expiry: no finished row is read."""
    fill(conn, finished_share)
    plan = explain(conn, generic)
    assert {"ix_tasks_claim", "ix_tasks_lock_expiry"} <= index_names(plan), json.dumps(plan, indent=1)
