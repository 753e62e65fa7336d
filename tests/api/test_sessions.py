"""Dashboard sessions and key guessing, on SQLite and PostgreSQL.

Decisions under test: sessions live in `dashboard_sessions`, so sign-out and key revocation end
them on the server; the cookie is Secure when the request was https, through a trusted proxy
too; a forged cookie is no session; names that read like `bootstrap-admin` are refused (422
`reserved_name`); wrong keys are counted per client address, and past the limit the address gets
429 `too_many_attempts` with Retry-After, without its keys being checked.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from backoffice.queue.models import DashboardSession
from backoffice.settings import Settings
from task_queue_api.dashboard.sessions import SESSION_COOKIE, SIGNIN_COOKIE
from task_queue_api.main import create_app
from tests.api.dashboard import csrf_of, sign_in, signed_in
from tests.helpers import ADMIN, ADMIN_KEY, assert_error, auth

PROXY = "10.0.0.7"


def sessions_of(engine: Engine, key_name: str) -> int:
    """How many session rows key `key_name` has."""
    with engine.connect() as conn:
        query = select(func.count()).where(DashboardSession.key_name == key_name)
        return int(conn.execute(query.select_from(DashboardSession)).scalar_one())


def is_signed_in(client: TestClient, cookie: str) -> bool:
    """True when `cookie` alone opens the overview page."""
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie)
    page = client.get("/", follow_redirects=False)
    assert page.status_code in (200, 303), page.text
    return bool(page.status_code == 200)


def session_cookie_header(client: TestClient, key: str, headers: dict[str, str]) -> str:
    """Sign in with `key` sending `headers`; the session's Set-Cookie header.

    The cookies go by hand: a Secure cookie is never sent back over the test client's http.
    """
    form = client.get("/signin", headers=headers)
    nonce_header = next(h for h in form.headers.get_list("set-cookie") if h.startswith(SIGNIN_COOKIE))
    nonce = nonce_header.split(";")[0].split("=", 1)[1]
    response = client.post(
        "/signin",
        data={"key": key, "csrf_token": csrf_of(form.text)},
        headers={**headers, "cookie": f"{SIGNIN_COOKIE}={nonce}"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return str(next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)))


def flags(set_cookie: str) -> list[str]:
    return [part.strip().lower() for part in set_cookie.split(";")]


def test_sign_out_ends_the_session_so_a_copied_cookie_stops_working(
    client: TestClient, operator: dict[str, str], engine: Engine
) -> None:
    token = signed_in(client, operator["x-functions-key"])
    copied = client.cookies[SESSION_COOKIE]
    assert sessions_of(engine, "ops") == 1
    out = client.post("/signout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    assert sessions_of(engine, "ops") == 0
    assert not is_signed_in(client, copied)


def test_revoking_a_key_ends_its_sessions(
    client: TestClient, operator: dict[str, str], engine: Engine
) -> None:
    signed_in(client, operator["x-functions-key"])
    cookie = client.cookies[SESSION_COOKIE]
    signed_in(client, ADMIN_KEY)  # another key's session survives
    admin_cookie = client.cookies[SESSION_COOKIE]
    assert client.delete("/api/keys/ops", headers=ADMIN).status_code == 204
    assert sessions_of(engine, "ops") == 0
    assert not is_signed_in(client, cookie)
    assert is_signed_in(client, admin_cookie)


@pytest.mark.parametrize("forged", ["AA.1.x", "AA", "b3Bz.9999999999.x", "x" * 43, "%00" * 15])
def test_a_forged_session_cookie_is_no_session(client: TestClient, forged: str) -> None:
    client.cookies.set(SESSION_COOKIE, forged)
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/signin"
    assert client.get("/fragments/queue", headers={"x-fragment": "1"}).status_code == 401
    assert_error(client.get("/tasks", headers={"accept": "application/json"}), 401, "unauthorized")
    signout = client.post("/signout", data={"csrf_token": "x"}, follow_redirects=False)
    assert signout.status_code == 303 and signout.headers["location"] == "/signin"


def test_a_junk_csrf_token_is_refused_not_a_crash(client: TestClient) -> None:
    client.get("/signin")
    response = client.post("/signin", data={"key": ADMIN_KEY, "csrf_token": "é"}, follow_redirects=False)
    assert response.status_code == 403 and SESSION_COOKIE not in client.cookies


def test_the_cookie_is_secure_only_through_a_trusted_proxy(make_settings: Callable[..., Settings]) -> None:
    forwarded = {"x-forwarded-proto": "https"}
    app = create_app(make_settings(trusted_proxies=f"192.0.2.1, {PROXY}"))
    with TestClient(app, client=(PROXY, 4000)) as proxied:
        assert "secure" in flags(session_cookie_header(proxied, ADMIN_KEY, forwarded))
        assert "secure" not in flags(session_cookie_header(proxied, ADMIN_KEY, {}))
        stranger = TestClient(app, client=("203.0.113.9", 4000))
        assert "secure" not in flags(session_cookie_header(stranger, ADMIN_KEY, forwarded))
    with TestClient(create_app(make_settings()), client=(PROXY, 4000)) as unconfigured:
        assert "secure" not in flags(session_cookie_header(unconfigured, ADMIN_KEY, forwarded))


@pytest.mark.parametrize(
    "name", ["bootstrap-admin", "Bootstrap-Admin", "bootstrap_admin", "BOOTSTRAP.ADMIN", "b00tstrap-adm1n"]
)
def test_key_names_that_read_like_the_bootstrap_admin_are_refused(client: TestClient, name: str) -> None:
    response = client.post("/api/keys", json={"name": name, "role": "admin"}, headers=ADMIN)
    assert_error(response, 422, "reserved_name")
    assert name not in [k["name"] for k in client.get("/api/keys", headers=ADMIN).json()["items"]]


def test_the_cli_refuses_a_bootstrap_look_alike_too(use_settings: Settings) -> None:
    from backoffice.cli import app as cli  # the CLI pulls in Prefect: imported by this test only

    result = CliRunner().invoke(cli, ["keys", "create", "bootstrap admin", "--role", "admin"])
    assert result.exit_code == 1 and "reserved for the bootstrap admin key" in result.output
    listed = CliRunner().invoke(cli, ["keys", "list"])
    assert listed.exit_code == 0 and "bootstrap" not in listed.output


def throttled_app(make_settings: Callable[..., Settings], **fields: object) -> TestClient:
    """A client (address 198.51.100.1) of an app that allows 3 wrong keys per address."""
    return TestClient(create_app(make_settings(auth_failure_limit=3, **fields)), client=("198.51.100.1", 1))


def test_wrong_keys_from_one_address_get_429_successes_do_not_count(
    make_settings: Callable[..., Settings],
) -> None:
    with throttled_app(make_settings) as client:
        wrong = auth("bok_guess")
        for _ in range(2):
            assert_error(client.get("/api/task-types", headers=wrong), 401, "unauthorized")
        for _ in range(5):  # successes neither count nor reset the count
            assert client.get("/api/task-types", headers=ADMIN).status_code == 200
        assert_error(client.get("/api/task-types", headers=wrong), 401, "unauthorized")
        refused = client.get("/api/task-types", headers=wrong)
        assert_error(refused, 429, "too_many_attempts")
        assert int(refused.headers["retry-after"]) > 0
        # While refused, even the right key is not checked (else a right guess would show).
        assert_error(client.get("/api/task-types", headers=ADMIN), 429, "too_many_attempts")
        assert client.get("/signin").status_code == 200  # pages without a key check still work
        other = TestClient(client.app, client=("198.51.100.2", 1))
        assert other.get("/api/task-types", headers=ADMIN).status_code == 200


def test_failed_sign_ins_count_with_the_api_key_checks(make_settings: Callable[..., Settings]) -> None:
    with throttled_app(make_settings) as client:
        for _ in range(3):
            assert sign_in(client, "bok_guess").status_code == 401
        refused = sign_in(client, ADMIN_KEY)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert "Too many wrong keys" in refused.text and SESSION_COOKIE not in client.cookies
        assert_error(client.get("/api/task-types", headers=ADMIN), 429, "too_many_attempts")


def test_behind_a_trusted_proxy_each_client_is_counted_apart(make_settings: Callable[..., Settings]) -> None:
    with throttled_app(make_settings, trusted_proxies="198.51.100.1") as proxy:
        first, second = {"x-forwarded-for": "192.0.2.10"}, {"x-forwarded-for": "192.0.2.20"}
        for _ in range(3):
            proxy.get("/api/task-types", headers={**auth("bok_guess"), **first})
        assert_error(proxy.get("/api/task-types", headers={**ADMIN, **first}), 429, "too_many_attempts")
        assert proxy.get("/api/task-types", headers={**ADMIN, **second}).status_code == 200
        # An untrusted peer's X-Forwarded-For is ignored: it cannot pose as many clients.
        peer = TestClient(proxy.app, client=("203.0.113.5", 1))
        for n in range(3):
            peer.get("/api/task-types", headers={**auth("bok_guess"), "x-forwarded-for": f"192.0.2.{n}"})
        spoofed = {**ADMIN, "x-forwarded-for": "192.0.2.99"}
        assert_error(peer.get("/api/task-types", headers=spoofed), 429, "too_many_attempts")
