"""A local result-callback receiver served over real HTTP: scripted answers, every request kept.

hook = CallbackReceiver(answers=[500, 200])   # then 200 for ever
with serve(hook.app) as base:
    ... f"{base}/hook" ...
    hook.wait_for(2)                          # gate on the second request arriving
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route


@dataclass(frozen=True)
class Received:
    """One POST as it arrived."""

    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


class CallbackReceiver:
    """POST /hook answers the next scripted status (200 once the script is used up); POST
    /redirect answers 302 to /elsewhere; /elsewhere records that a redirect was followed.
    With `hold` set, /hook waits for `release` before answering (a request in flight)."""

    def __init__(self, answers: list[int] | None = None, hold: bool = False) -> None:
        self.answers = list(answers or [])
        self.received: list[Received] = []
        self._changed = threading.Condition()
        self.release = threading.Event()
        self.hold = hold
        self.app = Starlette(
            routes=[
                Route("/hook", self._hook, methods=["POST"]),
                Route("/redirect", self._redirect, methods=["POST"]),
                Route("/elsewhere", self._hook, methods=["POST", "GET"]),
            ]
        )

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        with self._changed:
            status = self.answers.pop(0) if self.answers else 200
            self.received.append(Received(request.url.path, dict(request.headers), body, status))
            self._changed.notify_all()
        if self.hold:
            import anyio.to_thread

            await anyio.to_thread.run_sync(self.release.wait)
        return Response(status_code=status)

    async def _redirect(self, request: Request) -> Response:
        body = await request.body()
        with self._changed:
            self.received.append(Received(request.url.path, dict(request.headers), body, 302))
            self._changed.notify_all()
        return RedirectResponse("/elsewhere", status_code=302)

    def wait_for(self, count: int, timeout: float = 60.0) -> list[Received]:
        """Block until `count` requests arrived (AssertionError after `timeout`); all so far."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"expected {count} callback request(s), got {len(self.received)}")
            return list(self.received)


def valid_signature(secret: str, received: Received) -> bool:
    """True when X-Backoffice-Signature is the HMAC-SHA256 of the raw body under `secret`."""
    expected = "sha256=" + hmac.new(secret.encode(), received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received.headers.get("x-backoffice-signature", ""))


def json_of(received: Received) -> Any:
    """The parsed body."""
    import json

    return json.loads(received.body)
