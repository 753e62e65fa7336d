"""Dashboard sessions and CSRF tokens: HMAC-signed, stateless, bound to the key's stored hash.

The cookie is `<name>.<expiry>.<signature>` with the signature HMAC-SHA256(secret, name, expiry,
key hash). It carries no secret: the key itself is never stored in the cookie or the page, and
because the key's stored hash is part of what is signed, revoking the key ends its sessions at
once. Sign-out deletes the cookie; a stolen cookie stays valid until its expiry or the key's
revocation (there is no server-side session table to strike it from).

The signing secret is `BACKOFFICE_SESSION_SECRET`, else a random one generated once into
`.data/session_secret`. Several sidecars behind one address must share it (set the variable).

CSRF: every state-changing request carries `csrf_token`, an HMAC of the session cookie, in the
form (or the `x-csrf-token` header). The sign-in form has its own token bound to a random
pre-session cookie, so a foreign page cannot sign a browser in under another key either.
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


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    """A verified session: the signed-in key's principal and the raw cookie value."""

    principal: Principal
    cookie: str


class SessionSigner:
    """Issues and verifies session cookies and CSRF tokens with one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, *parts: str) -> str:
        message = "\x1f".join(parts).encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    def issue(self, name: str, key_hash: str, now: float | None = None) -> str:
        """A cookie value for key `name` (stored hash `key_hash`), valid for SESSION_SECONDS."""
        expires = str(int((now or time.time()) + SESSION_SECONDS))
        encoded = _b64(name.encode())
        return f"{encoded}.{expires}.{self._mac('session', name, expires, key_hash)}"

    @staticmethod
    def name_of(cookie: str) -> str | None:
        """The key name a cookie claims (unverified), or None when it is malformed."""
        parts = cookie.split(".")
        if len(parts) != 3:
            return None
        try:
            return _unb64(parts[0]).decode()
        except (ValueError, UnicodeDecodeError):
            return None

    def verify(self, cookie: str, key_hash: str, now: float | None = None) -> bool:
        """True when `cookie` is ours, unexpired, and signed over this key hash."""
        name = self.name_of(cookie)
        if name is None:
            return False
        _, expires, signature = cookie.split(".")
        if not expires.isdigit() or int(expires) < (now or time.time()):
            return False
        return hmac.compare_digest(signature, self._mac("session", name, expires, key_hash))

    def csrf_token(self, cookie: str) -> str:
        """The CSRF token of a session (or of a sign-in nonce)."""
        return self._mac("csrf", cookie)

    def check_csrf(self, cookie: str | None, token: str | None) -> bool:
        """True when `token` is the CSRF token of `cookie`."""
        if not cookie or not token:
            return False
        return hmac.compare_digest(token, self.csrf_token(cookie))
