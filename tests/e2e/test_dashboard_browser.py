"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against the real sidecar
(uvicorn in a thread) and the real Prefect test harness with the catalog deployed by
`prefect deploy --all`. Screenshots of every screen go to test-output/screenshots/.
"""

from __future__ import annotations

import contextvars
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from backoffice.calendar import PRAGUE
from backoffice.db import create_db_engine
from backoffice.jobs.catalog import Catalog
from backoffice.settings import Settings
from task_queue_api.main import create_app
from tests.deployed import deployed_catalog, in_step
from tests.deployments.conftest import deployment, prefect
from tests.helpers import ADMIN
from tests.servers import free_port

pytestmark = [
    pytest.mark.browser,
    pytest.mark.prefect,
    # Shares the worker (and its harness, already deployed) with the deployment tests.
    pytest.mark.xdist_group("deployments"),
    # A watchdog, not a measurement: harness start + `prefect deploy --all` + the walk-through
    # exceed the suite's default 300 s on a loaded two-core machine.
    pytest.mark.timeout(900),
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
WAIT_MS = 20_000  # how long the page may take to show a change (a bound for waiting, not a measurement)
T = TypeVar("T")


def blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run `fn` in a fresh thread with this context: Playwright's sync API keeps an event loop
    running in the test's thread, where asyncio.run (Prefect calls) is not allowed."""
    context = contextvars.copy_context()
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(context.run, fn, *args).result()


class LiveSidecar:
    """The sidecar under uvicorn in a thread, lifespan on, carrying this thread's context
    (the Prefect harness's settings live in a context variable)."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        context = contextvars.copy_context()
        self.thread = threading.Thread(target=context.run, args=(self.server.run,), daemon=True)

    def __enter__(self) -> LiveSidecar:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sidecar did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium; fails (never skips) when it is not installed."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's chromium; bin/test installs it.")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def jobs(settings: Settings, prefect_server: None) -> Iterator[Catalog]:
    """The catalog deployed into the harness, Prefect in step with this test's fresh records."""
    catalog = blocking(deployed_catalog)
    engine = create_db_engine(settings)
    blocking(in_step, engine, catalog)
    yield catalog
    blocking(in_step, engine, catalog)  # undo the test's pause in Prefect
    engine.dispose()


@pytest.fixture
def sidecar(settings: Settings, jobs: Catalog) -> Iterator[LiveSidecar]:
    """The live sidecar on the test database."""
    with LiveSidecar(settings) as live:
        yield live


def api(sidecar: LiveSidecar, method: str, path: str, headers: dict[str, str] = ADMIN, **kw: Any) -> Any:
    response = httpx.request(method, sidecar.url + path, headers=headers, timeout=30, **kw)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def shot(page: Page, name: str, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def seed_tasks(sidecar: LiveSidecar) -> dict[str, str]:
    """A dead-lettered EshopExport task, a completed one and a pending one; returns their ids."""
    worker = {
        "x-functions-key": api(
            sidecar,
            "POST",
            "/api/keys",
            json={"name": "eshop", "role": "consumer", "task_types": ["EshopExport"]},
        )["key"]
    }
    ids = {}
    for name in ("failed", "completed", "pending"):
        ids[name] = api(
            sidecar, "POST", "/api/tasks", json={"task_type": "EshopExport", "data": {"order": name}}
        )["id"]
    for name in ("failed", "completed"):
        (held,) = api(sidecar, "POST", "/api/tasks/lock", worker, json={"task_type": "EshopExport"})["items"]
        assert held["id"] == ids[name]
        if name == "failed":
            body = {
                "lock_token": held["lock_token"],
                "error": "Shoptet answered 400: unknown EAN",
                "retry": False,
            }
            api(sidecar, "POST", f"/api/tasks/{held['id']}/fail", worker, json=body)
        else:
            api(
                sidecar,
                "POST",
                f"/api/tasks/{held['id']}/complete",
                worker,
                json={"lock_token": held["lock_token"], "result": {"ok": True}},
            )
    return ids


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database `backoffice run` uses
def test_operator_runs_the_back_office_from_the_dashboard(
    browser: Browser, sidecar: LiveSidecar, jobs: Catalog
) -> None:
    ops_key = api(sidecar, "POST", "/api/keys", json={"name": "ops", "role": "operator"})["key"]
    ids = seed_tasks(sidecar)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    base = sidecar.url

    # A worker of the jobs' pool reports in (what `prefect worker start` does every 30 s). It
    # announces an hour's interval, so it stays alive however slowly this machine gets to the check.
    pool = blocking(deployment, "Finish_Transport").work_pool_name
    blocking(
        prefect,
        lambda client: client.send_worker_heartbeat(pool, "e2e-worker", heartbeat_interval_seconds=3600),
    )

    # --- sign-in: a wrong key is refused, an operator key gets an HttpOnly SameSite cookie -----
    page.goto(base + "/")
    expect(page).to_have_url(base + "/signin")
    shot(page, "01-sign-in")
    page.fill("#key", "bok_this-key-does-not-exist")
    page.locator("form[action='/signin'] button").click()
    expect(page.locator("#signin-error")).to_contain_text("unknown or revoked")
    expect(page.locator("#key")).to_have_value("")
    shot(page, "02-wrong-key-refused")
    page.fill("#key", ops_key)
    page.locator("form[action='/signin'] button").click()
    expect(page).to_have_url(base + "/")
    (session,) = [c for c in context.cookies() if c["name"] == "bo_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert ops_key not in session["value"]

    # --- every job, with cron in words, health lights ---------------------------------------------
    rows = page.locator("#jobs-table tbody tr[data-job-id]")
    expect(rows).to_have_count(len(jobs.ids))
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.jobId)") == jobs.ids
    expect(page.locator('tr[data-job-id="Finish_Transport"]')).to_contain_text("Every 5 minutes")
    expect(page.locator('tr[data-job-id="Finish_Transport"] a.prefect-link')).to_have_attribute(
        "href", f"{prefect_ui()}/deployments/deployment/{blocking(deployment, 'Finish_Transport').id}"
    )
    expect(page.locator('li[data-check="Database"]')).to_have_class("light ok")
    expect(page.locator('li[data-check="Prefect API"]')).to_have_class("light ok")
    expect(page.locator('li[data-check="Flow runner"]')).to_have_class("light ok")
    expect(page.locator('li[data-check="Flow runner"] .reason')).to_contain_text(f"e2e-worker ({pool}")
    shot(page, "03-overview")

    # --- disable a job: paused in Prefect, schedules off, recorded with the operator's name -------
    noon = page.locator('tr[data-job-id="Print_Picking_noon"]')
    expect(noon).to_have_attribute("data-enabled", "true")
    noon.locator("button.toggle").click()
    expect(page.locator("#flash")).to_contain_text("Print_Picking_noon is disabled")
    expect(noon).to_have_attribute("data-enabled", "false")
    expect(noon.locator(".health")).to_have_text("disabled")
    expect(noon).to_contain_text("by ops")
    paused = blocking(deployment, "Print_Picking_noon")
    assert paused.paused and [s.active for s in paused.schedules] == [False]
    shot(page, "04-job-disabled")

    # A disabled job can still be run by hand: the page says the run will end as Skipped.
    noon.locator("button.run-now").click()
    expect(page.locator("#flash")).to_contain_text("ends as Skipped")
    skipped_run = uuid.UUID(page.locator("#flow-run-id").inner_text())

    # --- run a job now ------------------------------------------------------------------------
    page.locator('tr[data-job-id="Finish_Transport"] button.run-now').click()
    expect(page.locator("#flash")).to_contain_text("Started a run of Finish_Transport")
    run_id = uuid.UUID(page.locator("#flow-run-id").inner_text())
    run = blocking(prefect, lambda client: client.read_flow_run(run_id))
    assert run.deployment_id == blocking(deployment, "Finish_Transport").id
    assert "by:ops" in run.tags
    shot(page, "05-run-now")

    # --- find the failed task through the filters, open it, read its audit trail ---------------
    page.locator("header nav a", has_text="Tasks").click()
    page.select_option("select[name=task_type]", "EshopExport")
    page.select_option("select[name=status]", "failed")
    today = datetime.now(PRAGUE).date().isoformat()
    page.fill("input[name=created_from]", today)
    page.fill("input[name=created_to]", today)
    page.locator("#task-filters button[type=submit]").click()
    found = page.locator("#task-table tbody tr")
    expect(found).to_have_count(1)
    expect(found.first).to_have_attribute("data-task-id", ids["failed"])
    assert f"created_from={today}" in page.url and "status=failed" in page.url
    shot(page, "06-tasks-filtered")
    found.first.locator("a.task-link").click()
    expect(page.locator("#task-status")).to_have_text("failed")
    expect(page.locator("#last-error")).to_contain_text("unknown EAN")
    expect(page.locator("#audit-trail td.event")).to_have_text(["created", "locked", "failed"])
    shot(page, "07-task-detail")

    # --- retry it (with confirmation) and see it pending ---------------------------------------
    page.locator("#retry-open").click()
    shot(page, "08-retry-confirmation")
    page.locator("#retry-confirm").click()
    expect(page.locator("#task-status")).to_have_text("pending")
    expect(page.locator("#audit-trail td.event")).to_have_text(["created", "locked", "failed", "retried"])
    expect(page.locator("#audit-trail tbody tr").last).to_contain_text("ops")
    shot(page, "09-task-retried")
    assert api(sidecar, "GET", f"/api/tasks/{ids['failed']}")["status"] == "pending"

    # --- delete another task (with confirmation); its audit trail stays ------------------------
    page.goto(f"{base}/tasks/{ids['completed']}")
    page.locator("#delete-open").click()
    page.locator("#delete-confirm").click()
    expect(page.locator("#task-deleted")).to_be_visible()
    expect(page.locator("#audit-trail td.event").last).to_have_text("deleted")
    shot(page, "10-task-deleted")

    # --- the numbers refresh without a full reload --------------------------------------------
    page.goto(base + "/")
    page.evaluate("window.__not_reloaded = true")
    expect(page.locator('#queue-stats tr[data-task-type="Label"]')).to_have_count(0)
    api(sidecar, "POST", "/api/tasks", json={"task_type": "Label", "data": {}})
    expect(page.locator('#queue-stats tr[data-task-type="Label"] td[data-status="pending"]')).to_have_text(
        "1", timeout=WAIT_MS
    )
    assert page.evaluate("window.__not_reloaded") is True

    # --- the same page on a phone: nothing wider than the screen ------------------------------
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(rows).to_have_count(len(jobs.ids))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # Each job is a card: its switch and "Run now" are on screen without sideways scrolling.
    for control in ("button.toggle", "button.run-now"):
        box = page.locator(f'tr[data-job-id="Finish_Transport"] {control}').bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390, control
    shot(page, "11-overview-phone")

    # The key never travelled in a URL.
    assert urls and not [u for u in urls if ops_key in u]
    context.close()
    for manual in (run_id, skipped_run):
        blocking(prefect, lambda client, r=manual: client.delete_flow_run(r))


def prefect_ui() -> str:
    from prefect.settings import get_current_settings

    return str(get_current_settings().ui_url).rstrip("/")
