"""The Enabled reconciler never invents a change, and a change Prefect refuses leaves no record.

The interleavings are made, not waited for: the code under test talks to the Prefect harness
through `Interposer`, a real HTTP hop that forwards every request and, right after Prefect answered
a chosen one (before the answer is passed on), runs an operator's change against the harness.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backoffice.jobs.control import JobControl
from backoffice.jobs.prefect_api import Deployed
from backoffice.jobs.store import JobRecord
from backoffice.jobs.sync import observed_variable, reconcile
from backoffice.settings import Settings
from tests.deployments.conftest import deployment, runs_of
from tests.helpers import ADMIN, app_client, assert_error, auth
from tests.servers import ThreadedServer, free_port

pytestmark = [pytest.mark.prefect, pytest.mark.xdist_group("deployments")]

Match = Callable[[str, str, bytes], bool]  # (method, path, body) of a request to Prefect


class Interposer:
    """A real HTTP hop in front of the Prefect harness that refuses some requests and makes one
    interleaving: `step` runs once, right after Prefect answered the first request `after` matches."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.refuse: Match = lambda *_: False
        self.after: Match = lambda *_: False
        self.step: Callable[[], Awaitable[object]] | None = None
        self.stepped = False
        route = Route("/{path:path}", self._forward, methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
        self.server = ThreadedServer(Starlette(routes=[route]))

    async def _forward(self, request: Request) -> Response:
        path, body = "/" + request.path_params["path"], await request.body()
        if self.refuse(request.method, path, body):
            return JSONResponse({"detail": "Service Unavailable"}, status_code=503)
        async with httpx.AsyncClient(timeout=60) as client:
            answer = await client.request(
                request.method,
                self.upstream + path,
                params=str(request.query_params),
                content=body,
                headers={"content-type": request.headers.get("content-type", "application/json")},
            )
        if self.step is not None and not self.stepped and self.after(request.method, path, body):
            self.stepped = True
            # This thread has no Prefect settings context of its own: name the harness.
            with temporary_settings(updates={PREFECT_API_URL: self.upstream}):
                await self.step()
        headers = {"content-type": answer.headers.get("content-type", "application/json")}
        return Response(answer.content, status_code=answer.status_code, headers=headers)

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Route this thread's Prefect clients through the hop (503s are not retried)."""
        self.server.start()
        try:
            with temporary_settings(
                updates={PREFECT_API_URL: self.server.base_url, PREFECT_CLIENT_MAX_RETRIES: 0}
            ):
                yield
        finally:
            self.server.stop()


@pytest.fixture
def hop(control: JobControl) -> Interposer:
    """An Interposer in front of the harness (Prefect first in step with the records)."""
    return Interposer(str(PREFECT_API_URL.value()))


def _in_step(job_id: str, enabled: bool) -> bool:
    return Deployed.of(deployment(job_id)).is_fully(enabled)


def _record(control: JobControl, job_id: str) -> tuple[bool, str | None]:
    record = control.store.get(job_id)
    return record.enabled, record.changed_by


def _waiting(job_id: str) -> int:
    return len([r for r in runs_of(job_id) if r.state_type is not None and r.state_type.value == "SCHEDULED"])


@pytest.mark.parametrize("enabled", [True, False])
def test_an_api_change_between_the_prefect_read_and_the_adoption_is_not_taken_for_a_toggle(
    control: JobControl, hop: Interposer, enabled: bool
) -> None:
    job = "Print_Picking_noon"
    asyncio.run(control.set_enabled(job, not enabled, "ops"))
    # The pass has read the deployment; the operator's change lands before it acts on it.
    hop.after = lambda method, path, body: path.endswith("/deployments/filter") and job.encode() in body
    hop.step = lambda: control.set_enabled(job, enabled, "alice")

    with hop.serving():
        adopted = asyncio.run(reconcile(control.store, control.catalog))

    assert hop.stepped
    assert adopted == []
    assert _record(control, job) == (enabled, "alice")
    assert _in_step(job, enabled)
    if enabled:
        assert _waiting(job) >= 1, "the just-scheduled runs are kept"
    assert asyncio.run(reconcile(control.store, control.catalog)) == []
    assert _record(control, job) == (enabled, "alice") and _in_step(job, enabled)


def test_a_record_changed_after_the_last_check_wins_over_a_ui_toggle(
    control: JobControl, hop: Interposer
) -> None:
    job = "Import_Comgate_yesterday_EUR"
    # A real toggle in the Prefect UI ...
    asyncio.run(_patch(f"/deployments/{deployment(job).id}", {"paused": True}))
    filtered = False

    def last_check(method: str, path: str, body: bytes) -> bool:
        nonlocal filtered
        if path.endswith("/deployments/filter") and job.encode() in body:
            filtered = True
            return False
        return filtered and method == "GET" and path.endswith("/variables/name/" + observed_variable(job))

    # ... and an operator enabling the job through the API just after the pass's last look at
    # Prefect: the adoption must not overwrite the newer record.
    hop.after, hop.step = last_check, lambda: control.set_enabled(job, True, "alice")

    with hop.serving():
        adopted = asyncio.run(reconcile(control.store, control.catalog))

    assert hop.stepped
    assert adopted == []
    assert _record(control, job) == (True, "alice")
    assert _in_step(job, True)
    assert asyncio.run(reconcile(control.store, control.catalog)) == []
    assert _record(control, job) == (True, "alice") and _in_step(job, True)


async def _patch(path: str, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.patch(f"{PREFECT_API_URL.value()}{path}", json=body, timeout=30)
    assert response.status_code == 204, response.text


def _operator(client: Any) -> dict[str, str]:
    created = client.post("/api/keys", json={"name": "ops", "role": "operator"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    return auth(created.json()["key"])


def test_a_change_prefect_refuses_half_way_leaves_the_record_unchanged(
    settings: Settings, control: JobControl, hop: Interposer
) -> None:
    job = "Controlling"
    # Pausing works, then Prefect fails: the schedules stay active.
    hop.refuse = lambda method, path, _body: method == "PATCH" and "/schedules/" in path

    with hop.serving(), app_client(settings) as api:
        response = api.put(f"/api/jobs/{job}/enabled", json={"enabled": False}, headers=_operator(api))

    assert_error(response, 503, "prefect_unavailable")
    assert control.store.get(job) == JobRecord(job, True)  # no row: as it was
    assert bool(deployment(job).paused), "Prefect took the first half of the change"
    # What Prefect was left with is not an operator's toggle: the record is applied again.
    assert asyncio.run(reconcile(control.store, control.catalog)) == []
    assert _record(control, job) == (True, None)
    assert _in_step(job, True)


def test_an_unreachable_prefect_changes_nothing(settings: Settings, control: JobControl) -> None:
    job = "Controlling"
    dead = f"http://127.0.0.1:{free_port()}/api"  # nobody listens there
    with temporary_settings(updates={PREFECT_API_URL: dead}), app_client(settings) as api:
        response = api.put(f"/api/jobs/{job}/enabled", json={"enabled": False}, headers=_operator(api))
    assert_error(response, 503, "prefect_unavailable")
    assert _record(control, job) == (True, None)
    assert _in_step(job, True)
