"""The `backoffice` command as an operator types it: db upgrade and keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backoffice.cli import app
from backoffice.settings import Settings

runner = CliRunner()


@pytest.fixture
def fresh_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty SQLite database named by BACKOFFICE_DATABASE_URL."""
    from backoffice.settings import get_settings

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("BACKOFFICE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_db_upgrade_then_key_lifecycle(fresh_sqlite: str) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    created = runner.invoke(app, ["keys", "create", "export", "--role", "consumer", "-t", "EshopExport"])
    assert created.exit_code == 0, created.output
    plaintext = created.output.strip().splitlines()[-1]
    assert plaintext.startswith("bok_")
    listed = runner.invoke(app, ["keys", "list"])
    assert "export" in listed.output and "EshopExport" in listed.output and plaintext not in listed.output
    assert runner.invoke(app, ["keys", "revoke", "export"]).exit_code == 0
    assert "revoked" in runner.invoke(app, ["keys", "list"]).output


def test_key_errors_are_clear(fresh_sqlite: str) -> None:
    runner.invoke(app, ["db", "upgrade"])
    no_types = runner.invoke(app, ["keys", "create", "c1", "--role", "consumer"])
    assert no_types.exit_code == 2 and "task-type" in no_types.output
    bad_role = runner.invoke(app, ["keys", "create", "c1", "--role", "root"])
    assert bad_role.exit_code == 2 and "role must be one of" in bad_role.output
    assert runner.invoke(app, ["keys", "create", "dup", "--role", "admin"]).exit_code == 0
    dup = runner.invoke(app, ["keys", "create", "dup", "--role", "admin"])
    assert dup.exit_code == 1 and "already exists" in dup.output
    missing = runner.invoke(app, ["keys", "revoke", "nobody"])
    assert missing.exit_code == 1 and "no active key" in missing.output


def test_settings_reject_nonsense_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKOFFICE_LOCK_TIMEOUT_SECONDS", "0")
    with pytest.raises(ValueError, match="lock_timeout_seconds"):
        Settings()
