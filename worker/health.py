"""Readiness of the worker: `GET /ready` on the health port answers 200 only while the worker is
registered with LiveKit and taking jobs; the framework's `/` stays the liveness check."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from livekit.agents import AgentServer
from livekit.agents.utils.http_server import HttpServer

READY_PATH = "/ready"


class ReadyAgentServer(AgentServer):
    """An AgentServer whose health server also answers `/ready`.

    The framework's `/` answers 200 before the worker has registered and while it drains, so a
    pod probed there is Ready when LiveKit cannot send it a job. Readiness here is what an
    operator means by it: registered (the framework's `worker_registered` event) and not
    draining (SIGTERM received; live calls go on, no new job is taken). A connection lost
    later is not seen here: the framework reconnects and registers again with no public signal
    in between, and a connection that fails for good fails `/` and ends the process.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._registered = False
        self.on("worker_registered", self._on_registered)

    def _on_registered(self, *_info: Any) -> None:
        self._registered = True

    # The framework creates its health server inside run() and starts it before emitting any
    # event, and a started aiohttp app refuses new routes; the one moment to add a route is
    # when run() stores the server on the instance, which this property intercepts.
    @property
    def _http_server(self) -> HttpServer | None:
        server: HttpServer | None = self.__dict__.get("_baton_health_server")
        return server

    @_http_server.setter
    def _http_server(self, server: HttpServer | None) -> None:
        if server is not None:
            server.app.add_routes([web.get(READY_PATH, self._ready)])
        self.__dict__["_baton_health_server"] = server

    async def _ready(self, _request: web.Request) -> web.Response:
        if self.draining:
            return web.Response(status=503, text="draining: live calls continue, no new jobs")
        if not self._registered:
            return web.Response(status=503, text="not registered with LiveKit")
        return web.Response(text="ready")
