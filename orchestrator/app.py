"""The FastAPI application: routers, error mapping, middleware and the services' lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from orchestrator import errors
from orchestrator.bodylimit import BodyLimitMiddleware
from orchestrator.logs import RequestLogMiddleware
from orchestrator.metrics import Metrics
from orchestrator.reconcile import reconcile_forever
from orchestrator.recovery import watch_waiting_calls
from orchestrator.routers import (
    conversations,
    handoffs,
    health,
    humans,
    outcomes,
    phone,
    voice,
    webhooks,
)
from orchestrator.services import open_services
from orchestrator.settings import Settings
from orchestrator.timing import ServerTimingMiddleware


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
                await asyncio.gather(*background, return_exceptions=True)

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
    # Innermost first: timing covers everything, including reading the body, and every
    # request's log line and trace id cover timing.
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(ServerTimingMiddleware)
    app.add_middleware(RequestLogMiddleware)
    return app
