"""Shared fixtures: a real PostgreSQL and a real SQLite database, migrated, per test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, text

from backoffice.db import create_db_engine, is_sqlite
from backoffice.migrate import upgrade
from backoffice.schema import all_tables
from backoffice.settings import Settings
from tests import pg
from tests.helpers import ADMIN_KEY, app_client

# Prefect 3.9 refuses PREFECT_FLOWS_HEARTBEAT_FREQUENCY=0; unset (the default) sends no heartbeats.


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """URL of the PostgreSQL server (found or started) the tests use."""
    return pg.server_url()


@pytest.fixture(scope="session")
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A database of this test process's own, migrated to head once, dropped at the end."""
    # The pid keeps concurrent pytest runs (xdist workers, other checkouts) apart.
    name = f"backoffice_test_{_worker()}_{os.getpid()}"
    url = pg.recreate_database(postgres_server, name)
    upgrade(url)
    yield url
    pg.drop_database(postgres_server, name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (faster than migrating per test)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _truncate_all(engine: Engine) -> None:
    existing = set(inspect(engine).get_table_names())
    tables = ", ".join(t.name for t in all_tables().sorted_tables if t.name in existing)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database of each kind: a fresh SQLite file, or the worker's PG database."""
    if request.param == "sqlite":
        path = tmp_path / "backoffice.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database")
    engine = create_db_engine(Settings(database_url=url))
    try:
        _truncate_all(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Build test settings: the test database, the bootstrap admin key, a temp output dir, plus `fields`."""

    def make(**fields: Any) -> Settings:
        # An in-process sidecar's reconcile timer would touch the Prefect harness in the middle of
        # a test that arranges Prefect's state itself: off unless a test asks (tests/topology).
        fields.setdefault("reconcile_interval_seconds", 3600.0)
        return Settings(
            database_url=database_url,
            admin_key=ADMIN_KEY,  # type: ignore[arg-type]
            output_dir=tmp_path / "output",
            **fields,
        )

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Settings pointing at the test database, with a bootstrap admin key and a temp output dir."""
    return make_settings()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client of the sidecar on the test database (lifespan started)."""
    with app_client(settings) as client:
        yield client


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """An engine on the test database."""
    engine = create_db_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def dialect(database_url: str) -> str:
    """'sqlite' or 'postgresql'."""
    return "sqlite" if is_sqlite(database_url) else "postgresql"


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One real, temporary Prefect server (the test harness) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def use_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Make code that reads the environment (flows, CLI) see the test settings."""
    from backoffice.settings import get_settings

    for name, value in settings.model_dump().items():
        if value is None:
            monkeypatch.delenv(f"BACKOFFICE_{name.upper()}", raising=False)
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        monkeypatch.setenv(f"BACKOFFICE_{name.upper()}", str(value))
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()
