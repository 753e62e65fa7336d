"""Fixtures for HTTP tests: the sidecar app on each database, and keys of each role."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from backoffice.settings import Settings
from task_queue_api.main import create_app

ADMIN = {"x-functions-key": "test-admin-key"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client of the sidecar on the test database (lifespan started)."""
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def make_key(client: TestClient) -> Callable[..., dict[str, str]]:
    """Create a key through the API and return its auth header."""

    def make(name: str, role: str = "consumer", task_types: list[str] | None = None) -> dict[str, str]:
        body: dict[str, object] = {"name": name, "role": role}
        if task_types is not None:
            body["task_types"] = task_types
        response = client.post("/api/keys", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        return {"x-functions-key": response.json()["key"]}

    return make


@pytest.fixture
def operator(make_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    """Auth header of an operator key named 'ops'."""
    return make_key("ops", "operator")


@pytest.fixture
def worker(make_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    """Auth header of a consumer key 'worker-1' for EshopExport."""
    return make_key("worker-1", "consumer", ["EshopExport"])
