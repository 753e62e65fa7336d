"""`backoffice run --sandbox` as a user runs it: everything starts, every job runs once to
completion, and Ctrl-C (SIGINT) leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from backoffice.accounting.models import Invoice
from backoffice.db import create_db_engine
from backoffice.jobs.catalog import PROJECT_DIR, load_catalog
from backoffice.settings import Settings
from tests.helpers import ADMIN, ADMIN_KEY
from tests.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BANNER = "backoffice is running"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _processes_with(marker: str) -> list[str]:
    """Every process (but this one) whose environment carries `marker`: what `run` started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            if marker.encode() in environ:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found.append(f"{entry.name}: {command}")
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


class Running:
    """`backoffice run --sandbox` in a subprocess with its own data folder and free ports."""

    def __init__(self, tmp: Path) -> None:
        self.marker = f"BACKOFFICE_E2E_MARKER={uuid.uuid4()}"
        self.port, self.prefect_port = free_port(), free_port()
        self.log = tmp / "run.log"
        self.data_dir = tmp / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKOFFICE_", "PREFECT_"))}
        env.update(dict([self.marker.split("=", 1)]))
        env.update(BACKOFFICE_ADMIN_KEY=ADMIN_KEY, PYTHONUNBUFFERED="1")
        command = [
            sys.executable, "-m", "backoffice.cli", "run", "--sandbox", "--data-dir", str(self.data_dir),
            "--port", str(self.port), "--prefect-port", str(self.prefect_port),
        ]  # fmt: skip
        with self.log.open("wb") as out:
            # Its own session, like a terminal's foreground job: the SIGINT below is Ctrl-C.
            self.process = subprocess.Popen(
                command,
                env=env,
                cwd=PROJECT_DIR,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def sidecar(self) -> str:
        """The sidecar's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def prefect_api(self) -> str:
        """The local Prefect server's API URL."""
        return f"http://127.0.0.1:{self.prefect_port}/api"

    def output(self) -> str:
        """What `run` and its children printed so far."""
        return self.log.read_text(errors="replace")

    def wait_until_running(self, timeout: float = 480.0) -> None:
        """Wait for the banner that `run` prints once everything is up."""
        deadline = time.monotonic() + timeout
        while BANNER not in self.output():
            assert self.process.poll() is None, f"run exited early:\n{self.output()[-4000:]}"
            assert time.monotonic() < deadline, f"run did not start:\n{self.output()[-4000:]}"
            time.sleep(1)

    def stop(self) -> int:
        """Ctrl-C, then wait for `run` to exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=120)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    """The running system; killed (group and marked processes) if a test leaves it running."""
    system = Running(tmp_path)
    yield system
    if system.process.poll() is None:
        os.killpg(system.process.pid, signal.SIGKILL)
    for line in _processes_with(system.marker):
        os.kill(int(line.split(":")[0]), signal.SIGKILL)


def _state(prefect_api: str, flow_run_id: str) -> str:
    response = httpx.get(f"{prefect_api}/flow_runs/{flow_run_id}", timeout=30)
    response.raise_for_status()
    state = response.json()["state"]
    return f"{state['type']}:{state['name']}"


def _wait_until_no_run_is_active(prefect_api: str, timeout: float = 420) -> None:
    """Block until no flow run is pending, running or cancelling."""
    active = {"flow_runs": {"state": {"type": {"any_": ["PENDING", "RUNNING", "CANCELLING"]}}}}
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.post(f"{prefect_api}/flow_runs/count", json=active, timeout=30)
        response.raise_for_status()
        if response.json() == 0:
            return
        assert time.monotonic() < deadline, "a scheduled run never finished"
        time.sleep(1)


def test_run_sandbox_runs_every_job_and_ctrl_c_stops_everything(running: Running) -> None:
    running.wait_until_running()
    output = running.output()
    assert f"http://127.0.0.1:{running.prefect_port}" in output and f"{running.sidecar}/docs" in output
    assert "backoffice keys create" in output
    # Commands in a second terminal find this Prefect server through the data folder.
    url_file = running.data_dir / "prefect-api-url"
    assert url_file.read_text().strip() == running.prefect_api

    jobs = httpx.get(f"{running.sidecar}/api/jobs", headers=ADMIN, timeout=60)
    assert jobs.status_code == 200, jobs.text
    assert [j["id"] for j in jobs.json()["items"]] == load_catalog().ids
    assert all(j["enabled"] and j["next_run_at"] for j in jobs.json()["items"])

    # Disable every job first (their deployments pause, waiting runs go), and let a scheduled run
    # that had already started finish, so none collides with ours (Finish_Transport cancels a
    # newcomer); then run each one now with force=true.
    for job_id in load_catalog().ids:
        url = f"{running.sidecar}/api/jobs/{job_id}"
        disabled = httpx.put(f"{url}/enabled", json={"enabled": False}, headers=ADMIN, timeout=60)
        assert disabled.status_code == 200 and disabled.json()["health"] == "disabled", disabled.text
    _wait_until_no_run_is_active(running.prefect_api)
    started = {}
    for job_id in load_catalog().ids:
        url = f"{running.sidecar}/api/jobs/{job_id}"
        response = httpx.post(f"{url}/run", json={"force": True}, headers=ADMIN, timeout=60)
        assert response.status_code == 201, response.text
        started[job_id] = response.json()["flow_run_id"]

    deadline = time.monotonic() + 420
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = {job_id: _state(running.prefect_api, run_id) for job_id, run_id in started.items()}
        if all(s.split(":")[0] in FINAL for s in states.values()):
            break
        time.sleep(2)
    assert states == {job_id: "COMPLETED:Completed" for job_id in started}, running.output()[-6000:]
    # The jobs worked against the fakes: yesterday's invoices of the sandbox's Shoptet are stored.
    engine = create_db_engine(Settings(database_url=f"sqlite:///{running.data_dir / 'backoffice.db'}"))
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Invoice)).scalar_one() > 0
    finally:
        engine.dispose()

    assert running.stop() == 0, running.output()[-4000:]
    assert "All stopped." in running.output()
    assert not url_file.exists()
    assert _processes_with(running.marker) == []
    for port in (running.port, running.prefect_port):
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
