"""A second terminal beside `bin/run`: `backoffice jobs …` finds the local Prefect server by itself.

`backoffice run` leaves the URL of the Prefect server it started in `.data/prefect-api-url`; here
that file points at the test harness, and the command runs as an operator types it: a new process
in the checkout's place (the test's directory), without PREFECT_API_URL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL
from sqlalchemy import Engine

from backoffice.settings import Settings
from tests.deployed import deployed_catalog, in_step
from tests.servers import free_port

pytestmark = [pytest.mark.prefect, pytest.mark.xdist_group("deployments")]

LOCAL_SERVER_FILE = Path(".data/prefect-api-url")  # as the README tells operators


@pytest.fixture
def checkout(tmp_path: Path, prefect_server: None, engine: Engine) -> Path:
    """A working directory whose `.data/prefect-api-url` names the harness (the catalog deployed)."""
    in_step(engine, deployed_catalog())
    url_file = tmp_path / LOCAL_SERVER_FILE
    url_file.parent.mkdir(parents=True)
    url_file.write_text(f"{PREFECT_API_URL.value()}\n")
    return tmp_path


def _backoffice(cwd: Path, settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m backoffice.cli ARGS` in `cwd`, on the test database, without PREFECT_API_URL."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BACKOFFICE_"))}
    environ.update(
        BACKOFFICE_DATABASE_URL=settings.database_url,
        PREFECT_HOME=str(cwd / "prefect-home"),  # no profile of this machine's user leaks in
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "backoffice.cli", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_jobs_list_finds_the_prefect_server_backoffice_run_started(
    checkout: Path, settings: Settings
) -> None:
    done = _backoffice(checkout, settings, "jobs", "list")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["JOB", "ENABLED", "HEALTH"]
    assert any(line.startswith("Controlling ") and line.split()[1] == "yes" for line in lines)


def test_prefect_api_url_still_wins(checkout: Path, settings: Settings) -> None:
    dead = f"http://127.0.0.1:{free_port()}/api"
    done = _backoffice(checkout, settings, "jobs", "list", PREFECT_API_URL=dead)
    assert done.returncode == 1
    assert dead in done.stderr and "cannot be reached" in done.stderr


def test_a_stale_file_is_ignored_with_a_sentence_saying_what_to_do(
    checkout: Path, settings: Settings
) -> None:
    (checkout / LOCAL_SERVER_FILE).write_text(f"http://127.0.0.1:{free_port()}/api\n")  # a killed run's
    done = _backoffice(checkout, settings, "jobs", "list")
    assert done.returncode == 1
    assert "PREFECT_API_URL is not set" in done.stderr and "bin/run" in done.stderr
