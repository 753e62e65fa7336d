"""The task store: every query of the scheduled-task queue (being built)."""

from __future__ import annotations

from sqlalchemy import Engine

from backoffice.settings import Settings


class TaskStore:
    """Create, lock, complete, fail, extend, retry, list and audit tasks."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def close(self) -> None:
        """Stop background helpers."""
