"""Function keys, readiness, and refusing to serve an unmigrated database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from backoffice.settings import Settings
from tests.helpers import ADMIN, app_client, auth


def test_admin_creates_lists_and_revokes_keys(client: TestClient, make_key: Any) -> None:
    response = client.post(
        "/api/keys",
        json={"name": "export-1", "role": "consumer", "task_types": ["EshopExport"]},
        headers=ADMIN,
    )
    assert response.status_code == 201
    created = response.json()
    assert created["key"].startswith("bok_") and len(created["key"]) > 40
    listed = client.get("/api/keys", headers=ADMIN).json()["items"]
    assert [(k["name"], k["role"], k["task_types"], k["revoked"]) for k in listed] == [
        ("export-1", "consumer", ["EshopExport"], False)
    ]
    assert all("key" not in k and "key_hash" not in k for k in listed)
    assert client.delete("/api/keys/export-1", headers=ADMIN).status_code == 204
    assert client.get("/api/keys", headers=ADMIN).json()["items"][0]["revoked"] is True
    unknown = client.delete("/api/keys/export-1", headers=ADMIN)
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"


def test_keys_are_stored_hashed(client: TestClient, settings: Settings) -> None:
    plaintext = client.post("/api/keys", json={"name": "ops", "role": "operator"}, headers=ADMIN).json()[
        "key"
    ]
    engine = create_engine(settings.database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash FROM api_keys WHERE name = 'ops'")).scalar_one()
    engine.dispose()
    assert plaintext not in stored and len(stored) == 64


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "c", "role": "consumer"}, "validation_error"),
        ({"name": "o", "role": "operator", "task_types": ["EshopExport"]}, "validation_error"),
        ({"name": "x", "role": "root"}, "validation_error"),
        ({"name": "", "role": "admin"}, "validation_error"),
        ({"name": "bad name", "role": "admin"}, "validation_error"),
    ],
)
def test_invalid_keys_are_422(client: TestClient, body: dict[str, Any], code: str) -> None:
    response = client.post("/api/keys", json=body, headers=ADMIN)
    assert response.status_code == 422 and response.json()["error"] == code
    assert client.get("/api/keys", headers=ADMIN).json()["items"] == []


def test_duplicate_key_name_is_409(client: TestClient) -> None:
    assert client.post("/api/keys", json={"name": "a", "role": "admin"}, headers=ADMIN).status_code == 201
    again = client.post("/api/keys", json={"name": "a", "role": "admin"}, headers=ADMIN)
    assert again.status_code == 409 and again.json()["error"] == "already_exists"


def test_operator_may_not_manage_keys(client: TestClient, operator: dict[str, str]) -> None:
    response = client.post("/api/keys", json={"name": "z", "role": "admin"}, headers=operator)
    assert response.status_code == 403 and response.json()["error"] == "forbidden"


def test_created_admin_key_works_without_bootstrap(settings: Settings) -> None:
    with app_client(settings) as client:
        key = client.post("/api/keys", json={"name": "root", "role": "admin"}, headers=ADMIN).json()["key"]
    no_bootstrap = settings.model_copy(update={"admin_key": None})
    with app_client(no_bootstrap) as client:
        assert client.get("/api/keys", headers=auth(key)).status_code == 200
        assert client.get("/api/keys", headers=ADMIN).status_code == 401


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_unmigrated_database_is_not_ready_and_api_refuses(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}", admin_key="k")  # type: ignore[arg-type]
    with app_client(settings) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["error"] == "database_not_migrated"
        refused = client.get("/api/tasks", headers=auth("k"))
        assert refused.status_code == 503 and refused.json()["error"] == "database_not_migrated"
        assert refused.headers["retry-after"]


def test_unreachable_database_is_503_not_a_hang(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://postgres@127.0.0.1:1/nowhere",
        admin_key="k",  # type: ignore[arg-type]
        db_connect_timeout_seconds=2,
    )
    with app_client(settings) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["error"] == "database_unavailable"
        response = client.get("/api/tasks", headers=auth("k"))
        assert response.status_code == 503 and response.json()["error"] == "database_unavailable"
