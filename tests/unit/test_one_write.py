"""`HeadWithBody` (task_queue_api/one_write.py): a response head with a Content-Length goes out
with its body in one write; anything else goes out as it comes. The transport under it is a
recorder of writes (the socket is the boundary here; tests/api/test_one_write_sidecar.py counts
the packets a real sidecar sends)."""

from __future__ import annotations

import asyncio
from typing import Any

from task_queue_api.one_write import HeadWithBody

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n"
CHUNKED = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"


class Recorder(asyncio.Transport):
    """Records what is written and whether it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0


def test_a_head_with_a_content_length_goes_with_its_body() -> None:
    async def scenario() -> None:
        raw = Recorder()
        transport = HeadWithBody(raw)
        transport.write(HEAD)
        assert raw.writes == [] and transport.get_write_buffer_size() == len(HEAD)
        transport.write(b'{"ok":true}')
        assert raw.writes == [HEAD + b'{"ok":true}']
        transport.write(HEAD)  # the next answer on the connection, likewise
        transport.write(b'{"ok":true}')
        await asyncio.sleep(0)  # a turn of the loop sends nothing more
        assert raw.writes == [HEAD + b'{"ok":true}'] * 2

    asyncio.run(scenario())


def test_a_head_whose_body_does_not_follow_at_once_goes_alone_at_the_next_turn() -> None:
    async def scenario() -> None:
        raw = Recorder()
        transport = HeadWithBody(raw)
        transport.write(HEAD)  # an answer to HEAD: uvicorn writes no body
        assert raw.writes == []
        await asyncio.sleep(0)
        assert raw.writes == [HEAD]
        transport.write(b"")
        assert raw.writes == [HEAD, b""]

    asyncio.run(scenario())


def test_streamed_heads_and_interim_answers_go_at_once() -> None:
    async def scenario() -> None:
        raw = Recorder()
        transport = HeadWithBody(raw)
        for data in (b"HTTP/1.1 100 Continue\r\n\r\n", CHUNKED, b"5\r\nhello\r\n"):
            transport.write(data)
        assert raw.writes == [b"HTTP/1.1 100 Continue\r\n\r\n", CHUNKED, b"5\r\nhello\r\n"]

    asyncio.run(scenario())


def test_a_held_head_is_sent_before_the_connection_closes() -> None:
    async def scenario() -> None:
        raw = Recorder()
        transport = HeadWithBody(raw)
        transport.write(HEAD)
        transport.close()
        assert raw.writes == [HEAD] and raw.closed and transport.is_closing()
        await asyncio.sleep(0)
        assert raw.writes == [HEAD]  # not twice

    asyncio.run(scenario())
