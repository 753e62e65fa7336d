"""/api/transport-boxes over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from backoffice.warehouse.models import TransportBox, TransportBoxItem
from tests.helpers import ADMIN, assert_error

URL = "/api/transport-boxes"


def create_box(client: TestClient, headers: dict[str, str] = ADMIN, **body: Any) -> dict[str, Any]:
    response = client.post(URL, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def put_state(client: TestClient, code: str, headers: dict[str, str] = ADMIN, **body: Any) -> Any:
    return client.put(f"{URL}/{code}/state", json=body, headers=headers)


def test_create_then_get_and_list_by_state(client: TestClient, operator: dict[str, str]) -> None:
    items = [{"product_code": "ANL-001", "amount": 12}, {"product_code": "Krém / 50 ml", "amount": 3}]
    response = client.post(URL, json={"code": "B-001", "state": "Received", "items": items}, headers=operator)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"{URL}/B-001"
    box = response.json()
    assert box["state"] == "Received" and box["version"] == 1
    assert box["created_by"] == "ops" and box["updated_by"] == "ops" and box["error_reason"] is None
    assert [(i["product_code"], i["amount"], i["movement_state"]) for i in box["items"]] == [
        ("ANL-001", 12, "pending"),
        ("Krém / 50 ml", 3, "pending"),
    ]
    create_box(client, code="B-002")  # New, no items yet

    fetched = client.get(f"{URL}/B-001", headers=operator).json()
    assert fetched == box
    received = client.get(URL, params={"state": "Received"}, headers=operator).json()["items"]
    assert [b["code"] for b in received] == ["B-001"]
    everything = client.get(URL, headers=operator).json()["items"]
    assert {b["code"]: b["state"] for b in everything} == {"B-001": "Received", "B-002": "New"}


def test_duplicate_code_is_409(client: TestClient) -> None:
    create_box(client, code="B-1")
    assert_error(client.post(URL, json={"code": "B-1"}, headers=ADMIN), 409, "already_exists")


@pytest.mark.parametrize(
    "body",
    [
        {"code": ""},
        {"code": "has space"},
        {"code": "a/b"},
        {"code": "B-1", "state": "Stocked"},
        {"code": "B-1", "state": "Bogus"},
        {"code": "B-1", "items": [{"product_code": "A", "amount": 0}]},
        {"code": "B-1", "items": [{"product_code": "A", "amount": -2}]},
        {"code": "B-1", "items": [{"product_code": "A", "amount": "5"}]},
        {"code": "B-1", "items": [{"product_code": "A", "amount": 1.5}]},
        {"code": "B-1", "items": [{"product_code": " ", "amount": 1}]},
        {"code": "B-1", "items": [{"product_code": "A\u0000B", "amount": 1}]},
        {"code": "B-1", "items": [{"product_code": "A ", "amount": 1}]},
        {"code": "B-1", "items": [{"product_code": "A", "amount": 1}, {"product_code": "A", "amount": 2}]},
        {"code": "B-1", "unknown": True},
        {"code": "x" * 65},
    ],
)
def test_bad_create_bodies_are_422(client: TestClient, body: dict[str, Any]) -> None:
    assert_error(client.post(URL, json=body, headers=ADMIN), 422, "validation_error")
    assert client.get(URL, headers=ADMIN).json()["items"] == []


def test_unknown_box_is_404_and_bad_state_filter_is_422(client: TestClient) -> None:
    assert_error(client.get(f"{URL}/nope", headers=ADMIN), 404, "not_found")
    assert_error(client.get(f"{URL}/bad%00code", headers=ADMIN), 422, "validation_error")
    assert_error(put_state(client, "nope", state="Received"), 404, "not_found")
    assert_error(client.get(URL, params={"state": "Lost"}, headers=ADMIN), 422, "validation_error")
    assert_error(client.get(URL, params={"limit": 0}, headers=ADMIN), 422, "validation_error")


def test_needs_an_operator_key(client: TestClient, worker: dict[str, str]) -> None:
    assert_error(client.get(URL), 401, "unauthorized")
    assert_error(client.get(URL, headers=worker), 403, "forbidden")
    assert_error(client.post(URL, json={"code": "B-1"}, headers=worker), 403, "forbidden")
    assert client.get(URL, headers=ADMIN).json()["items"] == []


def test_operator_moves_box_along_and_version_grows(client: TestClient, operator: dict[str, str]) -> None:
    create_box(client, code="B-9", items=[{"product_code": "ANL-002", "amount": 1}])
    for state, version in (("Opened", 2), ("InTransit", 3), ("Received", 4)):
        response = put_state(client, "B-9", operator, state=state)
        assert response.status_code == 200, response.text
        assert response.json()["state"] == state and response.json()["version"] == version
    again = put_state(client, "B-9", operator, state="Received")
    assert again.status_code == 200 and again.json()["version"] == 4  # no-op
    assert again.json()["updated_by"] == "ops"


def test_forbidden_transitions_and_stale_version_are_409(client: TestClient) -> None:
    create_box(client, code="B-5")
    message = assert_error(put_state(client, "B-5", state="Stocked"), 409, "invalid_transition")["message"]
    assert "New" in message and "Stocked" in message
    assert_error(put_state(client, "B-5", state="Error"), 409, "invalid_transition")
    assert_error(put_state(client, "B-5", state="Opened", version=7), 409, "version_conflict")
    assert put_state(client, "B-5", state="Closed", version=1).status_code == 200
    assert_error(put_state(client, "B-5", state="New"), 409, "invalid_transition")
    assert_error(put_state(client, "B-5", state="Lost"), 422, "validation_error")


def test_received_box_being_stocked_cannot_be_taken_back(client: TestClient, engine: Engine) -> None:
    create_box(client, code="B-6", state="Received", items=[{"product_code": "ANL-003", "amount": 2}])
    with engine.begin() as conn:
        conn.execute(update(TransportBoxItem).values(movement_state="stocked"))
    assert_error(put_state(client, "B-6", state="InTransit"), 409, "invalid_transition")


def test_error_box_needs_a_decision_on_unknown_movements(client: TestClient, engine: Engine) -> None:
    items = [{"product_code": "ANL-004", "amount": 2}, {"product_code": "ANL-005", "amount": 4}]
    create_box(client, code="B-7", state="Received", items=items)
    create_box(client, code="B-8", state="Received", items=items)
    # What the job leaves behind after a timeout: one item stocked, one of unknown outcome.
    with engine.begin() as conn:
        conn.execute(update(TransportBox).values(state="Error", error_reason="timeout"))
        conn.execute(
            update(TransportBoxItem)
            .where(TransportBoxItem.product_code == "ANL-004")
            .values(movement_state="stocked")
        )
        conn.execute(
            update(TransportBoxItem)
            .where(TransportBoxItem.product_code == "ANL-005")
            .values(movement_state="unknown")
        )

    message = assert_error(put_state(client, "B-7", state="Received"), 409, "unknown_movements")["message"]
    assert "ANL-005" in message and "ANL-004" not in message
    assert_error(put_state(client, "B-7", state="Received", unknown_items="maybe"), 422, "validation_error")

    resent = put_state(client, "B-7", state="Received", unknown_items="not_stocked").json()
    assert resent["state"] == "Received" and resent["error_reason"] is None
    assert {i["product_code"]: i["movement_state"] for i in resent["items"]} == {
        "ANL-004": "stocked",
        "ANL-005": "pending",
    }
    confirmed = put_state(client, "B-8", state="Received", unknown_items="stocked").json()
    assert {i["movement_state"] for i in confirmed["items"]} == {"stocked"}
    assert client.get(URL, params={"state": "Error"}, headers=ADMIN).json()["items"] == []
