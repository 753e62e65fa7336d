"""Migrations upgrade an empty database to exactly the schema the models describe.

Every `models` module of every domain is imported first, so a model that nobody registered in
`backoffice.schema.DOMAINS` is still compared (and shows up as a missing table).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, inspect, text

import backoffice
from backoffice.db import create_db_engine
from backoffice.migrate import head_revision, is_at_head, upgrade
from backoffice.schema import Base, all_tables
from backoffice.settings import Settings
from tests import pg


def all_models() -> MetaData:
    """The metadata with every `models` module below `backoffice` imported."""
    for module in pkgutil.walk_packages(backoffice.__path__, "backoffice."):
        if module.name.endswith(".models"):
            importlib.import_module(module.name)
    return Base.metadata


def test_every_models_module_is_registered() -> None:
    registered = set(all_tables().tables)
    assert set(all_models().tables) == registered


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a brand-new, empty database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        server: str = request.getfixturevalue("postgres_server")
        # Worker and pid keep concurrent runs (xdist, other checkouts) apart.
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        url = pg.recreate_database(server, f"backoffice_migrations_{worker}_{os.getpid()}")
    engine = create_db_engine(Settings(database_url=url), url)
    yield engine
    engine.dispose()


def test_upgrade_yields_the_models_schema(empty_engine: Engine) -> None:
    """alembic's compare_metadata finds no difference after `upgrade head` on an empty database."""
    metadata = all_models()
    with empty_engine.connect() as conn:
        assert inspect(conn).get_table_names() == []
    upgrade(empty_engine.url.render_as_string(hide_password=False))
    assert is_at_head(empty_engine) and head_revision() is not None

    with empty_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences: list[Any] = compare_metadata(context, metadata)
        tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
    assert differences == []
    assert tables == set(metadata.tables)


def index_definitions(engine: Engine) -> dict[str, str]:
    """Each index's full definition as the database reports it (columns, uniqueness, WHERE)."""
    if engine.dialect.name == "postgresql":
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    else:
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    with engine.connect() as conn:
        rows = conn.execute(text(query)).all()
        # SQLite keeps the CREATE INDEX text as written: compare it without quotes and spacing.
        return {
            name: re.sub(r'[\s"`]', "", sql).lower() for name, sql in rows if "alembic_version" not in name
        }


def test_indexes_match_the_models(empty_engine: Engine, tmp_path: Path) -> None:
    """compare_metadata skips WHERE clauses: the migrated indexes, partial predicates included,
    must read exactly like those `create_all` makes from the models."""
    upgrade(empty_engine.url.render_as_string(hide_password=False))
    if empty_engine.dialect.name == "postgresql":
        server_url = empty_engine.url.set(drivername="postgresql", database="postgres")
        server = server_url.render_as_string(hide_password=False)
        reference_url = pg.recreate_database(server, f"{empty_engine.url.database}_models")
    else:
        reference_url = f"sqlite:///{tmp_path / 'models.db'}"
    reference = create_db_engine(Settings(database_url=reference_url), reference_url)
    try:
        all_models().create_all(reference)
        assert index_definitions(empty_engine) == index_definitions(reference)
    finally:
        reference.dispose()
