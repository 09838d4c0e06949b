"""The browser's files: the widget script sites embed, the dashboard human agents work in, and
in development the demo page.

Files are found once, when the app is built, and served by name from that list, so no request
path ever reaches the file system. The widget is embedded by other sites: short caching (a new
release reaches visitors within minutes) and readable across origins. Pages carry a Content
Security Policy that allows scripts and styles from here and connections to here and LiveKit.
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import BaseModel

from orchestrator.errors import PageNotFound
from orchestrator.settings import Settings

log = logging.getLogger("orchestrator.pages")

WIDGET_CACHE = "public, max-age=300"
PAGE_CACHE = "no-cache"
FileName = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]


def files_in(directory: Path) -> dict[str, Path]:
    """The regular files directly in `directory`, by name."""
    if not directory.is_dir():
        return {}
    return {path.name: path for path in directory.iterdir() if path.is_file()}


def livekit_origins(livekit_url: str) -> list[str]:
    """What a page must be allowed to connect to for LiveKit: its WebSocket URL and the same
    host over HTTP(S), where the client checks its token (`/rtc/validate`)."""
    parts = urlsplit(livekit_url)
    secure = parts.scheme in ("wss", "https")
    host = parts.netloc
    return [f"{'wss' if secure else 'ws'}://{host}", f"{'https' if secure else 'http'}://{host}"]


def content_security_policy(settings: Settings) -> str:
    livekit = " ".join(livekit_origins(settings.livekit_url))
    return "; ".join([
        "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
        f"connect-src 'self' {livekit}", "media-src 'self' blob: mediastream:",
        "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
    ])


def _respond(path: Path, cache: str, extra: dict[str, str] | None = None) -> FileResponse:
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type.endswith("javascript"):
        media_type += "; charset=utf-8"
    return FileResponse(path, media_type=media_type, headers={
        "Cache-Control": cache, "X-Content-Type-Options": "nosniff", **(extra or {})})


def widget_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["web"], include_in_schema=False)
    widget = files_in(settings.web_dir / "widget")
    if not widget:
        log.warning("no widget files in %s: run `make web-build` (npm run build in web/)",
                    settings.web_dir)

    @router.get("/widget/{name}")
    async def widget_file(name: FileName) -> FileResponse:
        if name not in widget:
            raise PageNotFound(name)
        # Embedding sites load it from their own origin; let them even under COEP.
        return _respond(widget[name], WIDGET_CACHE,
                        {"Cross-Origin-Resource-Policy": "cross-origin"})

    return router


def page_headers(settings: Settings) -> dict[str, str]:
    return {"Content-Security-Policy": content_security_policy(settings),
            "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


class DashboardConfig(BaseModel):
    offline_models: bool
    """The stack answers with scripted models (the offline demo); the page says so."""


def dashboard_router(settings: Settings) -> APIRouter:
    """The human agents' dashboard, in every environment: it is how people take handoffs."""
    router = APIRouter(tags=["web"], include_in_schema=False)
    dashboard = files_in(settings.web_dir / "dashboard")
    headers = page_headers(settings)
    if not dashboard:
        log.warning("no dashboard files in %s: run `make web-build` (npm run build in web/)",
                    settings.web_dir)

    @router.get("/dashboard")
    async def dashboard_root() -> RedirectResponse:
        return RedirectResponse("/dashboard/", status_code=308)

    @router.get("/dashboard/")
    async def dashboard_page() -> FileResponse:
        if "index.html" not in dashboard:
            raise PageNotFound("index.html")
        return _respond(dashboard["index.html"], PAGE_CACHE, headers)

    @router.get("/dashboard/config")
    async def dashboard_config() -> DashboardConfig:
        return DashboardConfig(offline_models=settings.demo_offline)

    @router.get("/dashboard/{name}")
    async def dashboard_file(name: FileName) -> FileResponse:
        if name not in dashboard:
            raise PageNotFound(name)
        return _respond(dashboard[name], PAGE_CACHE, headers)

    return router


def demo_pages_router(settings: Settings) -> APIRouter:
    """The demo page, for development only: it gets its token from the demo session route."""
    router = APIRouter(tags=["web"], include_in_schema=False)
    demo = files_in(settings.web_dir / "demo")
    headers = page_headers(settings)

    @router.get("/demo/")
    async def demo_page() -> FileResponse:
        if "index.html" not in demo:
            raise PageNotFound("index.html")
        return _respond(demo["index.html"], PAGE_CACHE, headers)

    @router.get("/demo/{name}")
    async def demo_file(name: FileName) -> FileResponse:
        if name not in demo:
            raise PageNotFound(name)
        return _respond(demo[name], PAGE_CACHE, headers)

    return router
