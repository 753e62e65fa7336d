"""Dashboard helpers without I/O: cron in words, durations, session and CSRF signing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backoffice.jobs.catalog import load_catalog
from backoffice.settings import Settings
from task_queue_api.dashboard.health import flow_runner_check
from task_queue_api.dashboard.sessions import SessionSigner, load_secret
from task_queue_api.dashboard.views import cron_in_words, duration, local_time, relative


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        ("*/5 * * * *", "Every 5 minutes"),
        ("10 0 * * *", "Every day at 00:10"),
        ("0 1 * * *", "Every day at 01:00"),
        ("0 7 * * 1-5", "At 07:00, Monday through Friday"),
        ("0 12 * * 1-5", "At 12:00, Monday through Friday"),
        ("not a cron", "not a cron"),
    ],
)
def test_cron_in_words(cron: str, words: str) -> None:
    assert cron_in_words(cron) == words


def test_every_catalog_cron_reads_as_words() -> None:
    for job in load_catalog().jobs:
        words = cron_in_words(job.cron)
        assert words != job.cron and words[0].isupper(), job.id


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (0, "0 s"),
        (42.9, "42 s"),
        (180, "3 min"),
        (185, "3 min 5 s"),
        (7800, "2 h 10 min"),
        (3 * 86400 + 4 * 3600, "3 d 4 h"),
        (-90, "1 min 30 s"),
    ],
)
def test_duration(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_relative_and_local_time() -> None:
    now = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    assert relative(now - timedelta(minutes=5), now) == "5 min ago"
    assert relative(now + timedelta(hours=2), now) == "in 2 h 0 min"
    assert relative(None, now) == ""
    assert local_time(now) == "2025-01-15 13:00:00"  # Prague, winter time
    assert local_time(datetime(2025, 7, 1, 12, 0, tzinfo=UTC)) == "2025-07-01 14:00:00"
    assert local_time(None) == "—"


def test_csrf_tokens_belong_to_one_session() -> None:
    signer = SessionSigner(b"s" * 32)
    one, two = "token-one", "token-two"
    assert signer.check_csrf(one, signer.csrf_token(one))
    assert not signer.check_csrf(one, signer.csrf_token(two))
    assert not signer.check_csrf(one, None) and not signer.check_csrf(None, signer.csrf_token(one))
    assert not signer.check_csrf(one, "")


def test_the_secret_comes_from_settings_else_one_generated_file(tmp_path: Path) -> None:
    assert load_secret(Settings(session_secret="from-settings"), tmp_path / "s") == b"from-settings"  # type: ignore[arg-type]
    path = tmp_path / "data" / "session_secret"
    first = load_secret(Settings(session_secret=None), path)
    assert len(first) >= 32 and load_secret(Settings(session_secret=None), path) == first
    assert path.stat().st_mode & 0o777 == 0o600


@dataclass
class FakeWorker:
    """The fields of a Prefect worker the flow-runner light reads."""

    name: str
    last_heartbeat_time: datetime | None
    heartbeat_interval_seconds: int | None = 30


def test_flow_runner_light() -> None:
    now = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    fresh = FakeWorker("w1", now - timedelta(seconds=40))
    stale = FakeWorker("w2", now - timedelta(seconds=95))
    never = FakeWorker("w3", None)
    alive = flow_runner_check({"backoffice": [stale, fresh]}, now)
    assert alive.ok and "w1 (backoffice, heartbeat 40 s ago)" in alive.reason and "w2 (" not in alive.reason
    dead = flow_runner_check({"backoffice": [stale, never]}, now)
    assert not dead.ok and dead.reason == "No live worker; last heartbeats: w2 1 min 35 s ago"
    assert not flow_runner_check({"backoffice": []}, now).ok
    assert "work pool backoffice" in flow_runner_check({"backoffice": [never]}, now).reason
    assert "backoffice deploy" in flow_runner_check({}, now).reason
    slow = FakeWorker("w4", now - timedelta(seconds=95), heartbeat_interval_seconds=60)
    assert flow_runner_check({"p": [slow]}, now).ok  # three of its own intervals, not ours
