"""Serve an ASGI app (our fakes, the sidecar) over real HTTP on loopback, from a thread.

with serve(fake.app) as base_url:      # e.g. "http://127.0.0.1:54321"
    httpx.get(f"{base_url}/...")
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from backoffice.settings import Settings

# Idle keep-alive connections live as long on a test server as on the sidecar: longer than the
# clients' pool expiry (httpx: 5 s), as on real servers, so a client never reuses a connection
# the server is closing that instant (uvicorn's own default is 5 s too: seen as httpx.ReadError).
KEEP_ALIVE_SECONDS: int = Settings.model_fields["keep_alive_seconds"].default


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ThreadedServer:
    """uvicorn in a daemon thread; `start()` returns once the socket accepts connections."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
        self.server = uvicorn.Server(config)
        # uvicorn captures signals only in the main thread, so a server in a thread leaves them alone.
        self.thread = threading.Thread(target=self.server.run, name=f"asgi-{self.port}", daemon=True)

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        """Start serving and wait until the server is up."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the test server on port {self.port} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve `app` for the duration of the block; yields its base URL."""
    server = ThreadedServer(app)
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()
