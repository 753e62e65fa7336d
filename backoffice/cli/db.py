"""`backoffice db …`: the schema, owned by Alembic."""

from __future__ import annotations

import typer

from backoffice.migrate import upgrade as run_upgrade
from backoffice.settings import get_settings

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command()
def upgrade() -> None:
    """Migrate the database (BACKOFFICE_DATABASE_URL) to the newest schema."""
    run_upgrade(get_settings().database_url)
    typer.echo("Database is at the newest schema.")
