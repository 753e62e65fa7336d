"""The real sidecar (`backoffice api`) sends each answer as one TCP segment: head and body in
one write (task_queue_api/one_write.py), where stock uvicorn sends two. Counted by the client's
kernel (TCP_INFO's data segments in), over one keep-alive connection."""

from __future__ import annotations

import socket
import struct
import sys
from pathlib import Path

import pytest

from backoffice.settings import Settings
from tests.sidecar import Sidecar

# struct tcp_info (linux/tcp.h): tcpi_data_segs_in, a __u32 at byte 152 (Linux 4.6+).
DATA_SEGS_IN = 152
LOCK = (
    b"POST /api/tasks/lock HTTP/1.1\r\nHost: t\r\nx-functions-key: wrong\r\n"
    b"content-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
)
REQUESTS = (
    b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n",  # 405 (GET only): a head, no body
    b"GET /api/tasks HTTP/1.1\r\nHost: t\r\n\r\n",  # no key: 401, answered by the edge
    LOCK,  # a refused key: 401 (the edge then closes the connection, so it comes last)
)


def data_segments_in(sock: socket.socket) -> int:
    """Segments carrying data this socket has received."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    count: int = struct.unpack_from("I", info, DATA_SEGS_IN)[0]
    return count


def read_answer(sock: socket.socket, buffer: bytes, head_only: bool) -> tuple[bytes, bytes]:
    """One answer (head and Content-Length body) off the connection; (answer, what follows)."""
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(65536)
    head, rest = buffer.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    length = (
        0
        if head_only
        else next(int(v) for k, v in (x.split(":", 1) for x in lines[1:]) if k.lower() == "content-length")
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


@pytest.mark.skipif(sys.platform != "linux", reason="TCP_INFO's layout is Linux's")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_each_answer_is_one_segment(settings: Settings, tmp_path: Path) -> None:
    with (
        Sidecar(settings, log_path=tmp_path / "sidecar.log") as sidecar,
        socket.create_connection(("127.0.0.1", sidecar.port)) as sock,
    ):
        buffer = b""
        statuses = []
        for n, request in enumerate(REQUESTS, start=1):
            sock.sendall(request)
            answer, buffer = read_answer(sock, buffer, head_only=request.startswith(b"HEAD"))
            statuses.append(answer.split(b" ", 2)[1])
            assert data_segments_in(sock) == n, f"answer {n} came in more than one segment"
        assert statuses == [b"200", b"405", b"401", b"401"]
