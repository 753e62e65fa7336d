"""`GET /metrics` after a known sequence of API calls, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from backoffice.settings import Settings
from task_queue_api.main import create_app
from tests.api.conftest import ADMIN

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> Samples:
    """Every sample of one scrape, keyed by (sample name, labels)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def post(client: TestClient, url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    response = client.post(url, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_scraped_values_equal_the_known_sequence(
    settings: Settings, client: TestClient, make_key: Any
) -> None:
    worker = make_key("worker-1", "consumer", ["EshopExport", "Label"])
    exports = [
        post(client, "/api/tasks", {"task_type": "EshopExport", "data": {"n": n}}, ADMIN) for n in range(3)
    ]
    post(client, "/api/tasks", {"task_type": "Label", "data": {}}, ADMIN)

    first, second = post(client, "/api/tasks/lock", {"task_type": "EshopExport", "limit": 2}, worker)["items"]
    post(
        client, f"/api/tasks/{first['id']}/complete", {"lock_token": first["lock_token"], "result": 1}, worker
    )
    fail = {"lock_token": second["lock_token"], "error": "bad data", "retry": False}
    post(client, f"/api/tasks/{second['id']}/fail", fail, worker)

    (label,) = post(client, "/api/tasks/lock", {"task_type": "Label", "lease_seconds": 1}, worker)["items"]
    time.sleep(1.2)  # let the one-second lease run out (the numbers below do not depend on time)
    (again,) = post(client, "/api/tasks/lock", {"task_type": "Label"}, worker)["items"]
    assert again["id"] == label["id"]
    client.get(f"/api/tasks/{exports[2]['id']}", headers=ADMIN)
    client.get("/api/tasks/00000000-0000-0000-0000-000000000000", headers=ADMIN)  # 404

    before = datetime.now(UTC)
    samples = scrape(client)
    after = datetime.now(UTC)

    assert value(samples, "backoffice_database_up") == 1
    expected = {
        ("EshopExport", "pending"): 1,
        ("EshopExport", "locked"): 0,
        ("EshopExport", "expired"): 0,
        ("EshopExport", "completed"): 1,
        ("EshopExport", "failed"): 1,
        ("Label", "pending"): 0,
        ("Label", "locked"): 1,
        ("Label", "expired"): 0,
        ("Label", "completed"): 0,
        ("Label", "failed"): 0,
    }
    for (task_type, status), count in expected.items():
        assert value(samples, "backoffice_tasks", task_type=task_type, status=status) == count, (
            task_type,
            status,
        )

    # The oldest pending EshopExport is exports[2]: its age lies between the scrape's bounds.
    created = datetime.fromisoformat(exports[2]["created_at"])
    age = value(samples, "backoffice_task_oldest_pending_age_seconds", task_type="EshopExport")
    assert (before - created).total_seconds() <= age <= (after - created).total_seconds()
    assert value(samples, "backoffice_task_oldest_pending_age_seconds", task_type="Label") == 0

    assert value(samples, "backoffice_task_locks_total") == 4  # 2 exports + the label twice
    assert value(samples, "backoffice_task_completions_total") == 1
    assert value(samples, "backoffice_task_failures_total") == 1
    assert value(samples, "backoffice_task_lock_expiries_total") == 1

    hist = "backoffice_http_request_duration_seconds_count"
    assert value(samples, hist, method="POST", route="/api/tasks", status="201") == 4
    assert value(samples, hist, method="POST", route="/api/tasks/lock", status="200") == 3
    assert value(samples, hist, method="POST", route="/api/tasks/{task_id}/complete", status="200") == 1
    assert value(samples, hist, method="POST", route="/api/tasks/{task_id}/fail", status="200") == 1
    assert value(samples, hist, method="GET", route="/api/tasks/{task_id}", status="200") == 1
    assert value(samples, hist, method="GET", route="/api/tasks/{task_id}", status="404") == 1
    assert not any(dict(labels).get("route", "").startswith("/api/tasks/0000") for _, labels in samples)

    # Another process (a second app on the same database) reports the same queue counters:
    # they come from the audit table, not from the process that served the calls.
    with TestClient(create_app(settings)) as other:
        elsewhere = scrape(other)
    for name in ("locks", "completions", "failures", "lock_expiries"):
        sample = f"backoffice_task_{name}_total"
        assert value(elsewhere, sample) == value(samples, sample), name
    assert (
        hist,
        frozenset({"method": "POST", "route": "/api/tasks", "status": "201"}.items()),
    ) not in elsewhere


def test_counters_only_grow_and_count_each_event_once(client: TestClient, worker: dict[str, str]) -> None:
    totals = []
    for n in range(3):
        post(client, "/api/tasks", {"task_type": "EshopExport", "data": {"n": n}}, ADMIN)
        (task,) = post(client, "/api/tasks/lock", {"task_type": "EshopExport"}, worker)["items"]
        post(
            client,
            f"/api/tasks/{task['id']}/complete",
            {"lock_token": task["lock_token"], "result": n},
            worker,
        )
        samples = scrape(client)
        totals.append(
            (
                value(samples, "backoffice_task_locks_total"),
                value(samples, "backoffice_task_completions_total"),
            )
        )
    assert totals == [(1, 1), (2, 2), (3, 3)]


def test_unknown_paths_share_one_route_label(client: TestClient) -> None:
    for path in ("/nope/1", "/nope/2", "/wp-admin.php"):
        assert client.get(path).status_code == 404
    count = value(
        scrape(client),
        "backoffice_http_request_duration_seconds_count",
        method="GET",
        route="unmatched",
        status="404",
    )
    assert count == 3
