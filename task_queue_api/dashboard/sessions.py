"""Dashboard session cookies and CSRF tokens.

The session cookie is a random token naming a row of `dashboard_sessions` (see
`backoffice.queue.sessions`): it carries no secret of the key, sign-out deletes the row (a
copied cookie stops working), and revoking the key deletes its rows. Its Secure flag follows the
request's scheme, which is https behind a TLS-terminating proxy listed in
`BACKOFFICE_TRUSTED_PROXIES` (that proxy's X-Forwarded-Proto is believed, nobody else's).

CSRF: every state-changing request carries `csrf_token`, an HMAC of the session cookie, in the
form (or the `x-csrf-token` header). The sign-in form has its own token bound to a random
pre-session cookie, so a foreign page cannot sign a browser in under another key either.
The HMAC secret is `BACKOFFICE_SESSION_SECRET`, else a random one generated once into
`.data/session_secret`. Several sidecars behind one address must share it (set the variable).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from backoffice.principals import Principal
from backoffice.settings import DATA_DIR, Settings

SESSION_COOKIE = "bo_session"
SIGNIN_COOKIE = "bo_signin"
SESSION_SECONDS = 12 * 3600
SECRET_FILE = DATA_DIR / "session_secret"


def load_secret(settings: Settings, path: Path = SECRET_FILE) -> bytes:
    """The signing secret: from settings, else the file under `.data/` (created on first use)."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value().encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of two processes starting at once, one writes and both read the same secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    for _ in range(50):
        secret = path.read_text().strip()
        if secret:
            return secret.encode()
        time.sleep(0.02)  # the other process is between create and write
    raise RuntimeError(f"{path} is empty; delete it and restart")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass(frozen=True)
class Session:
    """A live session: the signed-in key's principal and the raw cookie value (its token)."""

    principal: Principal
    cookie: str


class SessionSigner:
    """Issues and checks CSRF tokens with one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, *parts: str) -> str:
        message = "\x1f".join(parts).encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    def csrf_token(self, cookie: str) -> str:
        """The CSRF token of a session (or of a sign-in nonce)."""
        return self._mac("csrf", cookie)

    def check_csrf(self, cookie: str | None, token: str | None) -> bool:
        """True when `token` is the CSRF token of `cookie`."""
        if not cookie or not token:
            return False
        # As bytes: compare_digest refuses str with non-ASCII characters (a 500 on a junk token).
        return hmac.compare_digest(token.encode(), self.csrf_token(cookie).encode())
