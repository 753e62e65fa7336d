"""The real sidecar (`backoffice api`) keeps an idle keep-alive connection longer than clients'
pools do (BACKOFFICE_KEEP_ALIVE_SECONDS, 130 s): a client drops an idle connection before the
server closes it, so it never sends a request on a socket the server is closing that instant.
With uvicorn's 5 s default against httpx's 5 s pool expiry that race was real (httpx.ReadError
in the 220-poll test)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from backoffice.settings import Settings
from tests.sidecar import Sidecar

HEALTH = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
IDLE = 6.0  # seconds: past httpx's pool expiry and uvicorn's own keep-alive default (both 5 s)


def answer(sock: socket.socket) -> bytes:
    """Send GET /healthz on `sock` and read the answer's head ("" if the server closed)."""
    sock.sendall(HEALTH)
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buffer += chunk
    return buffer


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_idle_connection_outlives_the_clients_pool_expiry(settings: Settings, tmp_path: Path) -> None:
    with (
        Sidecar(settings, log_path=tmp_path / "sidecar.log") as sidecar,
        socket.create_connection(("127.0.0.1", sidecar.port), timeout=60) as sock,
    ):
        assert answer(sock).startswith(b"HTTP/1.1 200")
        # Not a race against work: the property under test is that nothing happens for a while.
        time.sleep(IDLE)
        assert answer(sock).startswith(b"HTTP/1.1 200"), "the sidecar closed an idle connection early"


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_a_bad_keep_alive_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("BACKOFFICE_KEEP_ALIVE_SECONDS", value)
    with pytest.raises(ValidationError, match="keep_alive_seconds"):
        Settings()
