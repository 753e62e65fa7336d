"""Helpers for the dashboard's HTTP tests: sign in through the form, read a page's CSRF token."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def sign_in(client: TestClient, key: str) -> httpx.Response:
    """Fill and post the sign-in form (no redirects followed)."""
    form = client.get("/signin")
    assert form.status_code == 200
    return client.post("/signin", data={"key": key, "csrf_token": csrf_of(form.text)}, follow_redirects=False)


def signed_in(client: TestClient, key: str) -> str:
    """Sign in and return the CSRF token of the session's pages."""
    response = sign_in(client, key)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/"
    page = client.get("/tasks")
    assert page.status_code == 200
    return csrf_of(page.text)
