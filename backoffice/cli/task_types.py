"""`backoffice task-types …`: task-type definitions, written straight to the database (no sidecar needed)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from backoffice.db import create_db_engine
from backoffice.errors import BackofficeError
from backoffice.queue.task_types import DEFINITION_FIELDS, TaskTypeStore
from backoffice.settings import get_settings

app = typer.Typer(
    help="Task-type definitions (lease, attempts, backoff, data schema, retention).", no_args_is_help=True
)

# The API's rule for a task type name (task_queue_api/schemas/tasks.py TaskType).
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")


def _store() -> TaskTypeStore:
    settings = get_settings()
    return TaskTypeStore(create_db_engine(settings), settings)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@app.command("list")
def list_types() -> None:
    """List the defined task types and their settings (a dash: the default)."""
    typer.echo(f"{'TASK TYPE':<32} {'LEASE':>6} {'ATTEMPTS':>8} {'BACKOFF':>8} {'RETENTION':>9} SCHEMA")
    for d in _store().list():
        cells = [d.lease_seconds, d.max_attempts, d.retry_backoff_seconds, d.retention_days]
        lease, attempts, backoff, retention = ("-" if c is None else str(c) for c in cells)
        schema = "yes" if d.data_schema is not None else "-"
        typer.echo(f"{d.task_type:<32} {lease:>6} {attempts:>8} {backoff:>8} {retention:>9} {schema}")


@app.command("set")
def set_type(
    task_type: str,
    description: Annotated[str | None, typer.Option(help="What the type's tasks do")] = None,
    lease_seconds: Annotated[int | None, typer.Option(min=1, help="Default lock length")] = None,
    max_attempts: Annotated[int | None, typer.Option(min=1, max=1000, help="Default max_attempts")] = None,
    retry_backoff_seconds: Annotated[float | None, typer.Option(min=0.001, help="Backoff base")] = None,
    retention_days: Annotated[int | None, typer.Option(min=1, help="Days finished tasks are kept")] = None,
    data_schema: Annotated[
        str | None, typer.Option(help="A JSON Schema for data: JSON text, or @file.json")
    ] = None,
    clear: Annotated[
        list[str] | None, typer.Option("--clear", help="Unset a field (back to the default)")
    ] = None,
) -> None:
    """Define a task type, or change the given options of its definition (others keep their values)."""
    if not NAME.match(task_type):
        raise _fail("a task type starts with a letter; letters, digits, '_', '.', '-' (at most 128)")
    store = _store()
    existing = store.find(task_type)
    fields: dict[str, Any] = (
        {k: v for k, v in asdict(existing).items() if k in DEFINITION_FIELDS} if existing else {}
    )
    given = {
        "description": description,
        "lease_seconds": lease_seconds,
        "max_attempts": max_attempts,
        "retry_backoff_seconds": retry_backoff_seconds,
        "retention_days": retention_days,
    }
    fields.update({k: v for k, v in given.items() if v is not None})
    if data_schema is not None:
        text = (
            Path(data_schema[1:]).read_text(encoding="utf-8") if data_schema.startswith("@") else data_schema
        )
        try:
            fields["data_schema"] = json.loads(text)
        except ValueError as exc:
            raise _fail(f"--data-schema is not JSON: {exc}") from exc
        if not isinstance(fields["data_schema"], dict):
            raise _fail("--data-schema must be a JSON object")
    for name in clear or []:
        if name.replace("-", "_") not in DEFINITION_FIELDS:
            raise _fail(f"--clear takes one of {', '.join(DEFINITION_FIELDS)}")
        fields[name.replace("-", "_")] = None
    limit = store.settings.max_lease_seconds
    if fields.get("lease_seconds") is not None and fields["lease_seconds"] > limit:
        raise _fail(f"--lease-seconds may be at most {limit} (BACKOFFICE_MAX_LEASE_SECONDS)")
    try:
        _, created = store.put(task_type, "cli", fields)
    except BackofficeError as exc:
        raise _fail(exc.message) from exc
    typer.echo(f"{'Defined' if created else 'Changed'} task type '{task_type}'.")


@app.command()
def delete(task_type: str) -> None:
    """Delete a task type's definition (its tasks stay; the defaults apply again)."""
    try:
        _store().delete(task_type)
    except BackofficeError as exc:
        raise _fail(exc.message) from exc
    typer.echo(f"Deleted the definition of '{task_type}'.")
