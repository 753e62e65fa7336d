"""The `backoffice` command: one entry point for the sidecar, the database, keys and jobs."""

from __future__ import annotations

import typer

from backoffice.cli import db, deploy, jobs, keys, run, server, task_types

app = typer.Typer(
    name="backoffice",
    help="Back-office task queue and recurring jobs.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(task_types.app, name="task-types")
server.register(app)
app.add_typer(jobs.app, name="jobs")
deploy.register(app)
run.register(app)
