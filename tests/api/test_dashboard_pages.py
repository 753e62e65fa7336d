"""The dashboard's task pages over HTTP: filters, paging, detail, retry and delete, on both databases."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from backoffice.calendar import local_date
from task_queue_api.dashboard.task_pages import PAGE_SIZE
from tests.api.dashboard import csrf_of, signed_in
from tests.helpers import ADMIN

ROW = re.compile(r'<tr data-task-id="([0-9a-f-]{36})">')


def create(client: TestClient, headers: dict[str, str] = ADMIN, **body: Any) -> dict[str, Any]:
    body.setdefault("task_type", "EshopExport")
    body.setdefault("data", {})
    response = client.post("/api/tasks", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def listed(client: TestClient, url: str) -> list[str]:
    page = client.get(url)
    assert page.status_code == 200, page.text
    return ROW.findall(page.text)


def dead_letter(client: TestClient, worker: dict[str, str], task_type: str = "EshopExport") -> dict[str, Any]:
    (held,) = client.post("/api/tasks/lock", json={"task_type": task_type}, headers=worker).json()["items"]
    body = {"lock_token": held["lock_token"], "error": "Shoptet said 400: bad EAN", "retry": False}
    response = client.post(f"/api/tasks/{held['id']}/fail", json=body, headers=worker)
    assert response.status_code == 200
    return dict(response.json())


def test_filters_by_type_status_creator_completer_and_day(
    client: TestClient, operator: dict[str, str], worker: dict[str, str]
) -> None:
    by_ops = create(client, operator, data={"n": 1})
    failed = dead_letter(client, worker)  # by_ops is the only one: it is the one that failed
    other_type = create(client, task_type="Label")
    done = create(client)
    (held,) = client.post("/api/tasks/lock", json={"task_type": "EshopExport"}, headers=worker).json()[
        "items"
    ]
    assert held["id"] == done["id"]
    client.post(
        f"/api/tasks/{held['id']}/complete",
        json={"lock_token": held["lock_token"], "result": {}},
        headers=worker,
    )
    signed_in(client, operator["x-functions-key"])

    assert failed["id"] == by_ops["id"]
    assert listed(client, "/tasks") == [done["id"], other_type["id"], by_ops["id"]]  # newest first
    assert listed(client, "/tasks?status=failed") == [by_ops["id"]]
    assert listed(client, "/tasks?task_type=Label") == [other_type["id"]]
    assert listed(client, "/tasks?task_type=EshopExport&status=completed") == [done["id"]]
    assert listed(client, "/tasks?created_by=ops") == [by_ops["id"]]
    assert listed(client, "/tasks?completed_by=worker-1") == [done["id"]]
    today = local_date(datetime.now(UTC))
    assert len(listed(client, f"/tasks?created_from={today}&created_to={today}")) == 3
    assert listed(client, f"/tasks?created_to={today - timedelta(days=1)}") == []
    assert listed(client, f"/tasks?created_from={today + timedelta(days=1)}") == []


def test_bad_filters_are_a_message_not_an_error(client: TestClient, operator: dict[str, str]) -> None:
    signed_in(client, operator["x-functions-key"])
    for query in (
        "status=eaten",
        "created_from=yesterday",
        "task_type=%3Cscript%3E",
        "task_type=" + "x" * 300,
    ):
        page = client.get(f"/tasks?{query}")
        assert page.status_code == 400, query
        assert 'role="alert"' in page.text
        assert "<script>" not in page.text
    assert client.get("/tasks?cursor=garbage").status_code == 422
    assert client.get("/tasks/not-a-uuid").status_code == 404


def test_pages_through_the_list_with_the_cursor(client: TestClient, operator: dict[str, str]) -> None:
    ids = [create(client, data={"n": n})["id"] for n in range(PAGE_SIZE + 3)]
    signed_in(client, operator["x-functions-key"])
    first = client.get("/tasks?task_type=EshopExport")
    assert ROW.findall(first.text) == ids[::-1][:PAGE_SIZE]
    next_url = re.search(r'href="([^"]+)" id="next-page"', first.text)
    assert next_url
    second = client.get(next_url.group(1).replace("&amp;", "&"))
    assert ROW.findall(second.text) == ids[::-1][PAGE_SIZE:]
    assert 'id="next-page"' not in second.text
    assert "task_type=EshopExport" in next_url.group(1)  # the filters stay on the next page


def test_detail_retry_and_delete_go_through_the_store_as_the_signed_in_key(
    client: TestClient, operator: dict[str, str], worker: dict[str, str]
) -> None:
    task = create(client, data={"sku": "A-1"})
    dead_letter(client, worker)
    token = signed_in(client, operator["x-functions-key"])

    detail = client.get(f"/tasks/{task['id']}")
    assert detail.status_code == 200
    assert "Shoptet said 400: bad EAN" in detail.text and "&#34;sku&#34;: &#34;A-1&#34;" in detail.text
    assert [e for e in ("created", "locked", "failed") if f'class="event">{e}<' in detail.text] == [
        "created",
        "locked",
        "failed",
    ]

    retried = client.post(f"/tasks/{task['id']}/retry", data={"csrf_token": token})
    assert retried.status_code == 200 and 'id="task-status">pending<' in retried.text
    api_task = client.get(f"/api/tasks/{task['id']}", headers=ADMIN).json()
    assert api_task["status"] == "pending" and api_task["attempts"] == 0 and api_task["updated_by"] == "ops"

    # Retrying a pending task is refused with the API's code, on an HTML page.
    again = client.post(f"/tasks/{task['id']}/retry", data={"csrf_token": csrf_of(retried.text)})
    assert again.status_code == 409 and "not_retryable" in again.text

    deleted = client.post(f"/tasks/{task['id']}/delete", data={"csrf_token": token})
    assert deleted.status_code == 200 and 'id="task-deleted"' in deleted.text
    assert client.get(f"/api/tasks/{task['id']}", headers=ADMIN).status_code == 404
    events = client.get(f"/api/tasks/{task['id']}/events", headers=ADMIN).json()["items"]
    assert [(e["event"], e["actor"]) for e in events][-2:] == [("retried", "ops"), ("deleted", "ops")]


def test_deleting_a_locked_task_is_refused(
    client: TestClient, operator: dict[str, str], worker: dict[str, str]
) -> None:
    task = create(client)
    client.post("/api/tasks/lock", json={"task_type": "EshopExport"}, headers=worker)
    token = signed_in(client, operator["x-functions-key"])
    response = client.post(f"/tasks/{task['id']}/delete", data={"csrf_token": token})
    assert response.status_code == 409 and "task_locked" in response.text
    assert client.get(f"/api/tasks/{task['id']}", headers=ADMIN).json()["status"] == "locked"


def test_overview_counts_by_type_and_status(
    client: TestClient, operator: dict[str, str], worker: dict[str, str]
) -> None:
    create(client)
    dead_letter(client, worker)
    create(client)
    create(client, task_type="Label")
    signed_in(client, operator["x-functions-key"])
    fragment = client.get("/fragments/queue", headers={"x-fragment": "1"})
    assert fragment.status_code == 200
    row = re.search(r'<tr data-task-type="EshopExport">(.*?)</tr>', fragment.text, re.S)
    assert row
    counts = dict(re.findall(r'data-status="(\w+)">\s*<a [^>]+>(\d+)</a>', row.group(1)))
    assert counts == {"pending": "1", "locked": "0", "expired": "0", "completed": "0", "failed": "1"}
    assert 'data-task-type="Label"' in client.get("/").text
