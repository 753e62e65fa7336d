"""`python -m backoffice.cli …` = the `backoffice` command (how `backoffice run` starts its children)."""

from backoffice.cli import app

app(prog_name="backoffice")
