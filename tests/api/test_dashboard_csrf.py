"""Dashboard sign-in, session cookie and CSRF, on SQLite and PostgreSQL.

Decision under test: a dashboard form post without the right CSRF token is refused with 403 and
an HTML error page carrying the stable code `csrf_failed` (the dashboard's forms are browser
pages, so their errors are pages); nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from backoffice.db import create_db_engine
from backoffice.jobs.store import JobRecordStore
from backoffice.settings import Settings
from task_queue_api.dashboard.sessions import SESSION_COOKIE
from tests.api.dashboard import csrf_of, sign_in, signed_in
from tests.helpers import ADMIN, ADMIN_KEY, app_client

TYPE = "EshopExport"


def failed_task(client: TestClient, worker: dict[str, str]) -> dict[str, Any]:
    """A task that a worker failed for good (dead letter)."""
    created = client.post("/api/tasks", json={"task_type": TYPE, "data": {"n": 1}}, headers=ADMIN).json()
    (locked,) = client.post("/api/tasks/lock", json={"task_type": TYPE}, headers=worker).json()["items"]
    body = {"lock_token": locked["lock_token"], "error": "boom", "retry": False}
    failed = client.post(f"/api/tasks/{created['id']}/fail", json=body, headers=worker).json()
    assert failed["status"] == "failed"
    return dict(failed)


def events_of(client: TestClient, task_id: str) -> list[str]:
    return [e["event"] for e in client.get(f"/api/tasks/{task_id}/events", headers=ADMIN).json()["items"]]


def assert_csrf_refused(response: Any) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "csrf_failed" in response.text


def test_sign_in_sets_http_only_same_site_cookie_without_the_key(
    client: TestClient, operator: dict[str, str]
) -> None:
    key = operator["x-functions-key"]
    response = sign_in(client, key)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie_header = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    flags = [part.strip().lower() for part in cookie_header.split(";")]
    assert "httponly" in flags
    assert "samesite=strict" in flags
    value = client.cookies[SESSION_COOKIE]
    assert key not in value and key not in cookie_header
    # The key appears in no URL and no page of the session.
    overview = client.get("/")
    assert overview.status_code == 200 and "ops · operator" in overview.text
    for page in (overview, client.get("/tasks"), client.get("/signin")):
        assert key not in page.text
        assert key not in str(page.url) and all(key not in str(r.url) for r in page.history)


def test_sign_in_form_never_echoes_a_refused_key(client: TestClient) -> None:
    response = sign_in(client, "bok_wrong-key-that-must-not-echo")
    assert response.status_code == 401
    assert "unknown or revoked" in response.text
    assert "bok_wrong-key-that-must-not-echo" not in response.text
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/", follow_redirects=False).headers["location"] == "/signin"


def test_consumer_key_cannot_sign_in(client: TestClient, worker: dict[str, str]) -> None:
    response = sign_in(client, worker["x-functions-key"])
    assert response.status_code == 403
    assert "consumer key" in response.text
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sign_in_without_the_form_token_is_refused(client: TestClient, operator: dict[str, str]) -> None:
    client.get("/signin")  # has the pre-session cookie, but posts no token: a foreign page would
    response = client.post("/signin", data={"key": operator["x-functions-key"]}, follow_redirects=False)
    assert response.status_code == 403
    assert SESSION_COOKIE not in client.cookies


def test_retry_without_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, operator: dict[str, str], worker: dict[str, str]
) -> None:
    task = failed_task(client, worker)
    token = signed_in(client, operator["x-functions-key"])
    url = f"/tasks/{task['id']}/retry"

    assert_csrf_refused(client.post(url, follow_redirects=False))
    assert_csrf_refused(client.post(url, data={"csrf_token": "forged"}, follow_redirects=False))
    assert_csrf_refused(client.post(url, headers={"x-csrf-token": token[:-2] + "xx"}, follow_redirects=False))
    assert client.get(f"/api/tasks/{task['id']}", headers=ADMIN).json()["status"] == "failed"
    assert "retried" not in events_of(client, task["id"])

    done = client.post(url, data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303
    assert client.get(f"/api/tasks/{task['id']}", headers=ADMIN).json()["status"] == "pending"


def test_a_token_of_another_session_is_refused(
    settings: Settings, client: TestClient, operator: dict[str, str], worker: dict[str, str]
) -> None:
    task = failed_task(client, worker)
    signed_in(client, operator["x-functions-key"])
    with app_client(settings) as other:
        foreign_token = signed_in(other, ADMIN_KEY)
    response = client.post(
        f"/tasks/{task['id']}/delete", data={"csrf_token": foreign_token}, follow_redirects=False
    )
    assert_csrf_refused(response)
    assert client.get(f"/api/tasks/{task['id']}", headers=ADMIN).status_code == 200


def test_job_switch_without_csrf_token_is_refused(
    settings: Settings, client: TestClient, operator: dict[str, str]
) -> None:
    signed_in(client, operator["x-functions-key"])
    response = client.post(
        "/jobs/Finish_Transport/enabled", data={"enabled": "false"}, follow_redirects=False
    )
    assert_csrf_refused(response)
    assert_csrf_refused(client.post("/jobs/Finish_Transport/run", follow_redirects=False))
    engine = create_db_engine(settings)
    try:
        assert JobRecordStore(engine).get("Finish_Transport").changed_by is None  # never touched
    finally:
        engine.dispose()


def test_sign_out_needs_the_token_and_ends_the_session(client: TestClient, operator: dict[str, str]) -> None:
    token = signed_in(client, operator["x-functions-key"])
    assert_csrf_refused(client.post("/signout", follow_redirects=False))
    assert client.get("/", follow_redirects=False).status_code == 200
    out = client.post("/signout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    assert client.get("/", follow_redirects=False).headers["location"] == "/signin"


def test_revoking_the_key_ends_its_sessions(
    client: TestClient, make_key: Callable[..., dict[str, str]]
) -> None:
    key = make_key("temp-ops", "operator")["x-functions-key"]
    signed_in(client, key)
    assert client.get("/", follow_redirects=False).status_code == 200
    assert client.delete("/api/keys/temp-ops", headers=ADMIN).status_code == 204
    assert client.get("/", follow_redirects=False).headers["location"] == "/signin"
    # A polled fragment gets 401 (the page script reloads to the sign-in form).
    assert client.get("/fragments/queue", headers={"x-fragment": "1"}).status_code == 401


def test_a_tampered_cookie_is_no_session(client: TestClient, operator: dict[str, str]) -> None:
    signed_in(client, operator["x-functions-key"])
    cookie = client.cookies[SESSION_COOKIE]
    client.cookies.set(SESSION_COOKIE, cookie[:-1] + ("B" if cookie[-1] == "A" else "A"))
    assert client.get("/", follow_redirects=False).headers["location"] == "/signin"


def test_the_session_cookie_is_no_api_credential(client: TestClient, operator: dict[str, str]) -> None:
    signed_in(client, operator["x-functions-key"])
    response = client.get("/api/tasks")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_pages_forbid_framing_and_caching(client: TestClient, operator: dict[str, str]) -> None:
    signed_in(client, operator["x-functions-key"])
    page = client.get("/")
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert csrf_of(page.text)
