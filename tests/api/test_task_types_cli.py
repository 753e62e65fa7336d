"""`backoffice task-types list|set|delete` on SQLite and PostgreSQL, seen through the API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from backoffice.cli import app as cli
from tests.helpers import ADMIN

pytestmark = pytest.mark.usefixtures("use_settings")


def test_set_list_delete(client: TestClient, tmp_path: Path) -> None:
    runner = CliRunner()
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "required": ["sku"]}))
    done = runner.invoke(
        cli, ["task-types", "set", "EshopExport", "--max-attempts", "3", "--data-schema", f"@{schema}"]
    )
    assert done.exit_code == 0, done.output
    assert "Defined" in done.output
    # set changes only what it is given.
    done = runner.invoke(cli, ["task-types", "set", "EshopExport", "--lease-seconds", "90"])
    assert done.exit_code == 0 and "Changed" in done.output
    definition = client.get("/api/task-types/EshopExport", headers=ADMIN).json()["definition"]
    assert (definition["max_attempts"], definition["lease_seconds"]) == (3, 90)
    assert definition["data_schema"]["required"] == ["sku"] and definition["created_by"] == "cli"

    listed = runner.invoke(cli, ["task-types", "list"])
    (line,) = [x for x in listed.output.splitlines() if x.startswith("EshopExport")]
    assert line.split()[1:] == ["90", "3", "-", "-", "yes"]

    done = runner.invoke(cli, ["task-types", "set", "EshopExport", "--clear", "data_schema"])
    assert done.exit_code == 0
    assert (
        client.get("/api/task-types/EshopExport", headers=ADMIN).json()["definition"]["data_schema"] is None
    )

    assert runner.invoke(cli, ["task-types", "delete", "EshopExport"]).exit_code == 0
    gone = runner.invoke(cli, ["task-types", "delete", "EshopExport"])
    assert gone.exit_code == 1 and "no definition" in gone.output


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["9bad"], "starts with a letter"),
        (["Ok", "--data-schema", "{not json"], "not JSON"),
        (["Ok", "--data-schema", '{"type": "nope"}'], "not a valid JSON Schema"),
        (["Ok", "--lease-seconds", "999999"], "at most"),
        (["Ok", "--clear", "colour"], "--clear takes one of"),
    ],
)
def test_bad_input_is_refused(client: TestClient, args: list[str], problem: str) -> None:
    result = CliRunner().invoke(cli, ["task-types", "set", *args])
    assert result.exit_code == 1 and problem in result.output
    assert client.get("/api/task-types", headers=ADMIN).json()["items"] == []
