"""The FastAPI application: routers, error mapping, middleware and the services' lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from orchestrator import errors
from orchestrator.bodylimit import BodyLimitMiddleware
from orchestrator.logs import RequestLogMiddleware
from orchestrator.metrics import Metrics
from orchestrator.reconcile import reconcile_forever
from orchestrator.recovery import watch_waiting_calls
from orchestrator.routers import (
    conversations,
    demo,
    handoffs,
    health,
    humans,
    outcomes,
    pages,
    phone,
    voice,
    webhooks,
)
from orchestrator.services import open_services
from orchestrator.settings import Settings
from orchestrator.timing import ServerTimingMiddleware

log = logging.getLogger("baton.orchestrator")

BACKGROUND_STOP_WAIT = 5.0
"""Seconds a stopping replica gives its background checks to end."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings, metrics) as services:
            app.state.services = services
            if settings.reconcile_interval <= 0:
                yield
                return
            background = [
                asyncio.create_task(reconcile_forever(services, settings.reconcile_interval),
                                    name="baton-reconcile"),
                asyncio.create_task(watch_waiting_calls(services), name="baton-waiting-calls"),
            ]
            try:
                yield
            finally:
                for task in background:
                    task.cancel()
                # Bounded: a task cancelled inside a redis-py read was seen to swallow the
                # cancellation and keep the replica from stopping.
                _done, stuck = await asyncio.wait(background, timeout=BACKGROUND_STOP_WAIT)
                if stuck:
                    log.error("background tasks did not stop within %.0f s: %s",
                              BACKGROUND_STOP_WAIT, ", ".join(t.get_name() for t in stuck))

    app = FastAPI(
        title="Baton orchestrator",
        version="1.0.0",
        description="Conversations API, switch to voice, phone calls, LiveKit webhooks and live "
                    "streams.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(conversations.router)
    app.include_router(voice.router)
    app.include_router(handoffs.router)
    app.include_router(humans.router)
    app.include_router(outcomes.router)
    app.include_router(phone.router)
    app.include_router(webhooks.router)
    app.include_router(health.router)
    app.include_router(pages.widget_router(settings))
    app.include_router(pages.dashboard_router(settings))
    if settings.is_development:
        # The demo plays a site's backend without an API key; it must never face the internet.
        app.include_router(pages.demo_pages_router(settings))
        app.include_router(demo.router)
    # Innermost first: timing covers everything, including reading the body, and every
    # request's log line and trace id cover timing.
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    if settings.widget_origins:
        # Sites embedding the widget call the API from their own origin with its token.
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.widget_origins),
                           allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
                           expose_headers=["Retry-After"], max_age=600)
    app.add_middleware(ServerTimingMiddleware)
    app.add_middleware(RequestLogMiddleware)
    return app
