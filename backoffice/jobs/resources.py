"""What a job's task works with: the settings, the database engine and the external clients.

    with job_resources() as jobs:
        client = jobs.shoptet  # first: a missing token fails the run before anything is touched
        return import_invoices(client, jobs.engine, day, currency)

The engine and each client are made on first use (a task that only reads Comgate opens no
database pool, one that only writes the database resolves no credentials), from the settings
in force when the block was entered; credentials come from the Prefect Secret block first, then
the environment (`backoffice.integrations.credentials`). Leaving the block closes the clients and
disposes of the engine, in the reverse order of their making, whether the task succeeded or not.

Each task opens its own: an engine or an HTTP pool is not handed from one task to another.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import cached_property

from sqlalchemy import Engine

from backoffice.db import create_db_engine
from backoffice.integrations.comgate import ComgateClient
from backoffice.integrations.shoptet import ShoptetClient
from backoffice.settings import Settings, get_settings


class JobResources:
    """The settings, and lazily the engine and the clients, of one `job_resources()` block."""

    def __init__(self, settings: Settings, stack: ExitStack) -> None:
        self.settings = settings
        self._stack = stack

    @cached_property
    def engine(self) -> Engine:
        """The database engine of the settings, disposed of when the block ends."""
        engine = create_db_engine(self.settings)
        self._stack.callback(engine.dispose)
        return engine

    @cached_property
    def shoptet(self) -> ShoptetClient:
        """The configured Shoptet client; raises `MissingCredential` naming the token to set."""
        return self._stack.enter_context(ShoptetClient.from_settings(self.settings))

    @cached_property
    def comgate(self) -> ComgateClient:
        """The configured Comgate client; raises `MissingCredential` naming what to set."""
        return self._stack.enter_context(ComgateClient.from_settings(self.settings))


@contextmanager
def job_resources(settings: Settings | None = None) -> Iterator[JobResources]:
    """The resources of one task (`settings` default: `get_settings()`), released at the end."""
    with ExitStack() as stack:
        yield JobResources(settings or get_settings(), stack)
