"""The operations dashboard served at `/`: jobs, the task queue and health on one page.

Server-rendered (Jinja2 templates in `task_queue_api/templates`), a dozen lines of JavaScript
that refresh sections in place, one stylesheet; no build chain. Sessions and CSRF: sessions.py.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from task_queue_api.dashboard import jobs_view, pages, signin, task_pages
from task_queue_api.dashboard.auth import install_auth_handlers

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def install_dashboard(app: FastAPI) -> None:
    """Mount the dashboard's pages, actions and static files on the sidecar."""
    install_auth_handlers(app)
    for module in (signin, pages, task_pages, jobs_view):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
