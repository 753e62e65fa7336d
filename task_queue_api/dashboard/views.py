"""Rendering: the Jinja2 environment, its filters, and the page/fragment/error helpers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cron_descriptor import ExpressionDescriptor, FormatException, Options  # type: ignore[import-untyped]
from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from backoffice.calendar import to_prague
from backoffice.errors import BackofficeError

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
# Only our own script, style and form targets; no framing (the forms change state).
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def cron_in_words(cron: str) -> str:
    """`*/5 * * * *` → "Every 5 minutes"; `10 0 * * *` → "Every day at 00:10"."""
    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    try:
        words: str = ExpressionDescriptor(cron, options).get_description()
    except (FormatException, ValueError, KeyError):
        return cron
    fields = cron.split()
    # The library says "At 00:10" for a daily time; say that it happens every day.
    if len(fields) == 5 and fields[2:] == ["*", "*", "*"] and words.startswith("At "):
        return "Every day at " + words[3:]
    return words


def local_time(value: datetime | None) -> str:
    """A moment as `YYYY-MM-DD HH:MM:SS` in Prague time, or an em dash."""
    if value is None:
        return "—"
    return to_prague(value).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """Seconds as a short human duration: `42 s`, `3 min 5 s`, `2 h 10 min`, `3 d 4 h`."""
    if seconds is None:
        return "—"
    s = int(abs(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def relative(value: datetime | None, now: datetime | None = None) -> str:
    """`5 min ago` or `in 3 h 2 min` (empty for None)."""
    if value is None:
        return ""
    delta = (value - (now or datetime.now(UTC))).total_seconds()
    return f"in {duration(delta)}" if delta > 0 else f"{duration(delta)} ago"


def pretty_json(value: Any) -> str:
    """Indented JSON for <pre> blocks."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters.update(
    local=local_time, duration=duration, relative=relative, pretty_json=pretty_json, cron_words=cron_in_words
)


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with the request, the session (when any) and its CSRF token."""
    session = getattr(request.state, "dashboard_session", None)
    context.setdefault("session", session)
    context.setdefault("csrf_token", getattr(request.state, "csrf_token", ""))
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    # Pages show operational data: never cache them in shared or browser caches.
    response.headers.update(SECURITY_HEADERS)
    return response


def error_page(request: Request, status_code: int, code: str, message: str) -> HTMLResponse:
    """The HTML error page: the same stable code and sentence the API would send."""
    return render(request, "error.html", status_code, status=status_code, code=code, message=message)


def error_from(request: Request, exc: BackofficeError) -> HTMLResponse:
    """The HTML error page for one of our errors."""
    return error_page(request, exc.status_code, exc.code, exc.message)
