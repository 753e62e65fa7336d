"""Pure functions of the queue: roles, cursors, URL handling, payload sizes."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from backoffice.db import normalize_url
from backoffice.errors import Forbidden, ValidationFailed
from backoffice.principals import Principal
from backoffice.queue.keys import KeyStore, generate_key, hash_key
from backoffice.queue.queries import decode_cursor, encode_cursor
from backoffice.queue.store import json_size, new_task_id


def test_roles_rank_consumer_operator_admin() -> None:
    admin = Principal("a", "admin")
    consumer = Principal("c", "consumer", frozenset({"EshopExport"}))
    admin.require_role("operator")
    with pytest.raises(Forbidden, match="needs the operator role"):
        consumer.require_role("operator")
    consumer.require_task_type("EshopExport")
    with pytest.raises(Forbidden, match="Payroll"):
        consumer.require_task_type("Payroll")
    assert admin.may_touch("anything") and not consumer.may_touch("Payroll")


def test_cursor_round_trips_and_rejects_garbage() -> None:
    stamp, task_id = datetime(2026, 11, 28, 12, 0, 1, 5, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor(stamp, task_id)) == (stamp, task_id)
    for bad in ("", "abc", encode_cursor(stamp, task_id)[:-3] + "!!!"):
        with pytest.raises(ValidationFailed):
            decode_cursor(bad)


def test_postgres_urls_use_psycopg3() -> None:
    assert normalize_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_url("postgres://h/db") == "postgresql+psycopg://h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_keys_are_random_and_hashes_stable() -> None:
    a, b = generate_key(), generate_key()
    assert a != b and len(a) > 40
    assert hash_key(a) == hash_key(a) != hash_key(b)


def test_bootstrap_admin_key_needs_no_database() -> None:
    store = KeyStore(engine=None, bootstrap_admin_key="s3cret")  # type: ignore[arg-type]
    principal = store.authenticate("s3cret")
    assert principal is not None and principal.role == "admin"


def test_json_size_counts_utf8_bytes() -> None:
    assert json_size({"a": "č"}) == len('{"a":"č"}'.encode())


def test_task_ids_are_uuid7_in_creation_order() -> None:
    """RFC 9562 UUIDv7: version 7, the RFC's variant, the creation time in ms up front, so ids
    made in later milliseconds sort after earlier ones (and the random part differs)."""

    def millis(task_id: uuid.UUID) -> int:
        return int(task_id.hex[:12], 16)

    before = time.time_ns() // 1_000_000
    first = new_task_id()
    while time.time_ns() // 1_000_000 <= millis(first):  # the next millisecond: a gate, not a sleep
        pass
    second = new_task_id()
    after = time.time_ns() // 1_000_000
    for task_id in (first, second):
        assert task_id.version == 7 and task_id.variant == uuid.RFC_4122
        assert before <= millis(task_id) <= after
    assert first < second and str(first) < str(second)
    assert len({new_task_id() for _ in range(1000)}) == 1000
