"""`backoffice keys …`: function keys, written straight to the database (no sidecar needed)."""

from __future__ import annotations

from typing import Annotated

import typer

from backoffice.db import create_db_engine
from backoffice.errors import BackofficeError
from backoffice.principals import ROLES
from backoffice.queue.keys import KeyStore
from backoffice.settings import get_settings

app = typer.Typer(help="Function keys.", no_args_is_help=True)


def _store() -> KeyStore:
    return KeyStore(create_db_engine(get_settings()))


@app.command()
def create(
    name: str,
    role: Annotated[str, typer.Option(help="consumer, operator or admin")] = "consumer",
    task_type: Annotated[
        list[str] | None, typer.Option("--task-type", "-t", help="Task type a consumer may touch")
    ] = None,
) -> None:
    """Create a key and print its plaintext once (store it now; only its hash is kept)."""
    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}", param_hint="--role")
    if role == "consumer" and not task_type:
        raise typer.BadParameter("a consumer key needs at least one --task-type")
    try:
        info, plaintext = _store().create(name, role, task_type, actor="cli")
    except BackofficeError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"Created {info.role} key '{info.name}'. Its secret, shown only now:")
    typer.echo(plaintext)


@app.command("list")
def list_keys() -> None:
    """List keys (never their secrets)."""
    for k in _store().list():
        state = "revoked" if k.revoked else "active"
        types = ",".join(k.task_types or []) or "*"
        typer.echo(f"{k.name:<32} {k.role:<9} {state:<8} {types}")


@app.command()
def revoke(name: str) -> None:
    """Revoke a key at once."""
    try:
        _store().revoke(name)
    except BackofficeError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"Revoked key '{name}'.")
