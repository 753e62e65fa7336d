"""uvicorn's httptools protocol, sending a response's head and its body in one write.

uvicorn writes a response as two socket writes: the status line and headers, then the body. On
a socket with TCP_NODELAY each is its own packet, so the sidecar pays two `send`s and the client
wakes twice for every answer; on the queue's hot path (a few hundred bytes a call) that was
18 % of the sidecar's CPU (py-spy). `OneWriteHttpProtocol` holds back a head that declares a
Content-Length until the first write of its body, and sends both at once. An application sends
the body right after the head, in the same turn of the event loop; a head whose body does not
come in that turn (an answer to HEAD has none) is sent at the loop's next turn. A head without a
Content-Length (a streamed or chunked answer, `100 Continue`, a websocket's `101`) goes out at
once, and a held one goes before the connection closes.

The protocol also tells the app, without a round through the event loop, whether the client is
still connected (`client_gone`): Starlette's `Request.is_disconnected` asks by receiving under
an anyio cancel scope, which formats the task's repr on every call (5 % of a lock call's CPU).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# uvicorn lower-cases header names; Starlette writes them lower-case too.
_CONTENT_LENGTH = b"\r\ncontent-length:"
# `uvicorn.run(http=...)` of `backoffice api`.
UVICORN_HTTP = f"{__name__}:OneWriteHttpProtocol"
# The scope extension through which `OneWriteHttpProtocol` says the connection is closing.
CONNECTION_CLOSING = "backoffice.connection_closing"


class HeadWithBody(asyncio.Transport):
    """A transport that sends a response head with a Content-Length together with the body's
    first write."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._head: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send `data` (after a held head), or hold it if it is a head with a Content-Length."""
        data = bytes(data)  # uvicorn writes bytes: no copy
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + data)
        elif data.startswith(b"HTTP/") and data.endswith(b"\r\n\r\n") and _CONTENT_LENGTH in data:
            self._head = data
            self._loop.call_soon(self.flush)  # no body this turn: the head goes alone
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Send a held head now."""
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._head = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._head or b"")

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)


class OneWriteHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over `HeadWithBody` (`backoffice api` serves with it)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(HeadWithBody(transport))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        extensions[CONNECTION_CLOSING] = self.transport.is_closing


def client_gone(request: Request) -> Callable[[], Awaitable[bool]]:
    """Whether the request's client has hung up: asked of the connection under
    `OneWriteHttpProtocol` (`backoffice api`), else the ASGI way (a test client, another server)."""
    closing: Callable[[], bool] | None = request.scope.get("extensions", {}).get(CONNECTION_CLOSING)
    if closing is None:
        return request.is_disconnected

    async def gone() -> bool:
        return closing()

    return gone
