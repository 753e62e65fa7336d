"""Fixtures for HTTP tests: keys of each role (the `client` of the sidecar is tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.helpers import ADMIN, auth


@pytest.fixture
def make_key(client: TestClient) -> Callable[..., dict[str, str]]:
    """Create a key through the API and return its auth header."""

    def make(name: str, role: str = "consumer", task_types: list[str] | None = None) -> dict[str, str]:
        body: dict[str, object] = {"name": name, "role": role}
        if task_types is not None:
            body["task_types"] = task_types
        response = client.post("/api/keys", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        return auth(response.json()["key"])

    return make


@pytest.fixture
def operator(make_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    """Auth header of an operator key named 'ops'."""
    return make_key("ops", "operator")


@pytest.fixture
def worker(make_key: Callable[..., dict[str, str]]) -> dict[str, str]:
    """Auth header of a consumer key 'worker-1' for EshopExport."""
    return make_key("worker-1", "consumer", ["EshopExport"])
