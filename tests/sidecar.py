"""Run the real sidecar (`backoffice api`, uvicorn) in a subprocess on a free port.

    with Sidecar(settings) as sidecar:         # waits until /readyz answers 200
        httpx.post(f"{sidecar.url}/api/tasks/lock", ...)

The whole stack is exercised: CLI, uvicorn, app factory, pool, storage. Used by the
concurrency, lease and outage tests, where workers in other processes need a real server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from backoffice.settings import Settings
from tests.servers import free_port


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "backoffice"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from backoffice.cli import app; app()"]


def settings_env(settings: Settings) -> dict[str, str]:
    """The BACKOFFICE_* variables that reproduce `settings` in another process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"BACKOFFICE_{name.upper()}"] = str(value)
    return env


class Sidecar:
    """`backoffice api` for `settings` in a child process; stopped (and reaped) on exit."""

    def __init__(self, settings: Settings, workers: int = 1, log_path: Path | None = None) -> None:
        self.settings = settings
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Sidecar:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout: float = 180.0) -> None:
        """Start the server and wait until it is ready (migrated database reachable)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACKOFFICE_")}
        env.update(settings_env(self.settings))
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        command = [*_cli(), "api", "--port", str(self.port), "--workers", str(self.workers)]
        # Its own process group: stop() reaches uvicorn's worker processes too.
        self.process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the sidecar exited with {self.process.returncode}; {self._log()}")
                try:
                    if client.get(f"{self.url}/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the sidecar on port {self.port} did not get ready; {self._log()}")
                time.sleep(0.2)

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL to its whole process group) and reap it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        # Whatever is left of the group (a worker the supervisor lost) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=15)

    def _log(self) -> str:
        if self.log_path and self.log_path.exists():
            return "log tail:\n" + self.log_path.read_text(errors="replace")[-3000:]
        return "no log"
