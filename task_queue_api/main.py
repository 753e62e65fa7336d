"""The sidecar's app factory: settings → engine → stores, routers, one error handler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.routing import APIRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from backoffice.db import create_db_engine
from backoffice.settings import Settings, get_settings
from task_queue_api.context import AppContext
from task_queue_api.dashboard import install_dashboard
from task_queue_api.edge import install_edge
from task_queue_api.errors import install_error_handlers
from task_queue_api.hot_lane import SidecarApp, install_hot_lane
from task_queue_api.metrics import install_metrics
from task_queue_api.routes import health, jobs, keys, task_types, tasks, transport_boxes

DESCRIPTION = """
The back office's scheduled-task queue and job control.

Send a function key as the `x-functions-key` header (or the `code` query parameter).
Consumers lock tasks of their types, then complete or fail them with the lock token they got.
Every error is `{"error": "<code>", "message": "<what to do>"}`.
"""

# Long-polling lock calls wait as coroutines (backoffice/queue/long_poll.py); the threads serve
# the sync routes and SQLite's hot path.
THREAD_LIMIT = 200


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the sidecar for `settings` (default: the environment's)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREAD_LIMIT
        engine = create_db_engine(settings)
        app.state.ctx = AppContext.build(settings, engine)
        await app.state.ctx.start_hot_path()
        try:
            yield
        finally:
            await app.state.ctx.stop_hot_path()
            app.state.ctx.close()
            engine.dispose()

    app = SidecarApp(
        title="backoffice-tasks sidecar",
        version="1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,  # short operation ids, e.g. metrics
        # The sidecar's observability is its Prometheus /metrics and its logs; FastAPI's own
        # OpenTelemetry layer would ask for its providers on every request (2 % of a hot call).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    # The queue's hot routes (async, without the router's sync dependencies) go first.
    app.include_router(tasks.hot_router)
    for module in (health, keys, tasks, task_types, jobs, transport_boxes):
        app.include_router(module.router)
    # In front of everything (SidecarApp): it does the edge's and the timer's part itself.
    hot_routes = [r for r in tasks.hot_router.routes if isinstance(r, APIRoute)]
    install_hot_lane(app, hot_routes, settings.max_request_bytes)
    # Before the metrics: the request timer wraps the edge, so its refusals are timed too.
    install_edge(app, settings.max_request_bytes)
    install_metrics(app)
    install_dashboard(app)
    if settings.trusted_proxies:
        # Added last, so outermost: everything inside sees the client's address and scheme
        # (https → Secure cookies), taken from X-Forwarded-* of the listed proxies only.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app
