"""Chromium running livekit-client from npm joins the devserver and hears a Python publisher."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from aiohttp import web
from playwright.async_api import async_playwright

from deploy.processes import free_port
from devserver.process import DevServer
from tests.devserver.rtc_helpers import WAIT, joined, listen, next_remote_audio, publishing_sine

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "web" / "dist" / "livekit.js"
PAGE = Path(__file__).parent / "browser" / "listen.html"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]

pytestmark = pytest.mark.browser


@pytest.fixture
async def page_server() -> AsyncIterator[str]:
    """Serves the probe page and web/dist/livekit.js (built by `make`, i.e. `npm run build`)."""
    if not BUNDLE.exists():
        pytest.fail(f"{BUNDLE} is missing: run `make web-build` (npm ci and npm run build in web/)")

    async def page(_: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE)

    async def bundle(_: web.Request) -> web.FileResponse:
        return web.FileResponse(BUNDLE)

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/livekit.js", bundle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/"
    await runner.cleanup()


async def test_chromium_hears_a_python_participant_sine(
    devserver: DevServer, page_server: str
) -> None:
    room = f"browser-{uuid.uuid4().hex[:8]}"
    query = urlencode({"url": devserver.url, "token": devserver.token("browser", room)})
    async with (
        joined(devserver, "speaker", room) as speaker,
        publishing_sine(speaker, 440.0),
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(page_server + "?" + query)
            await page.wait_for_function(
                "window.failure || (window.probe && window.probe().rms > 0.05)",
                timeout=WAIT * 1000,
            )
            assert await page.evaluate("window.failure") is None
            heard = await page.evaluate("window.probe()")
        finally:
            await browser.close()
    assert heard["identity"] == "speaker"
    assert abs(heard["hz"] - 440.0) < 15


async def test_a_python_participant_hears_chromium_microphone(
    devserver: DevServer, page_server: str
) -> None:
    room = f"browser-{uuid.uuid4().hex[:8]}"
    query = urlencode(
        {"url": devserver.url, "token": devserver.token("visitor", room), "publish": "1"}
    )
    async with joined(devserver, "agent", room) as agent, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(page_server + "?" + query)
            track = await next_remote_audio(agent)
            # Chromium's fake microphone beeps once a second: two seconds hold at least one beep.
            heard = await listen(track, seconds=2.0)
            assert await page.evaluate("window.failure") is None
            assert list(agent.remote_participants) == ["visitor"]
        finally:
            await browser.close()
    assert heard.rms > 100
