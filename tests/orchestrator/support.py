"""Small helpers shared by the orchestrator tests."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import aiohttp
import httpx
from aiohttp import web
from google.protobuf import json_format
from livekit import api
from livekit.protocol import webhook

from conversation import attributes
from devserver.process import DevServer
from orchestrator.settings import Settings
from tests.conftest import ORCHESTRATOR_API_KEY

# Generous: other suites may load the machine.
WAIT = 30.0

AUTH = {"Authorization": f"Bearer {ORCHESTRATOR_API_KEY}"}


VISITOR = {attributes.ROLE: attributes.ROLE_VISITOR}
"""The attributes the orchestrator's visitor tokens carry; what makes a participant the visitor."""


def visitor_token(devserver: DevServer, identity: str, room: str) -> str:
    """A join token for a visitor of `room`, as the orchestrator would mint it."""
    return devserver.token(identity, room, attributes=VISITOR)


def new_conversation_id() -> str:
    # The devserver is shared by the whole run, so rooms (named by conversation) must differ.
    return f"t-{uuid.uuid4().hex[:16]}"


async def create_conversation(client: httpx.AsyncClient, conversation_id: str | None = None,
                              **body: Any) -> str:
    conversation_id = conversation_id or new_conversation_id()
    response = await client.post("/v1/conversations", json={"id": conversation_id, **body},
                                 headers=AUTH)
    assert response.status_code == 201, response.text
    return conversation_id


async def post_message(client: httpx.AsyncClient, conversation_id: str, text: str,
                       **body: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/conversations/{conversation_id}/messages",
                                 json={"role": "user", "text": text, **body}, headers=AUTH)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def events(client: httpx.AsyncClient, conversation_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/conversations/{conversation_id}/events",
                                params={"limit": 500}, headers=AUTH)
    assert response.status_code == 200, response.text
    return [item["event"] for item in response.json()["events"]]


def metric_sample(text: str, name: str) -> float:
    """The value of one sample line of the Prometheus text format."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no sample {name}")


class SseReader:
    """Parses a server-sent event stream from an open httpx streaming response."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()
        self.comments: list[str] = []

    async def events(self, count: int) -> list[dict[str, str]]:
        """The next `count` events, each as its fields (id, event, data)."""
        async with asyncio.timeout(WAIT):
            return await self._read(count)

    async def comment(self) -> str:
        """The next comment line (a heartbeat)."""
        async with asyncio.timeout(WAIT):
            await self._read(0, stop_at_comment=True)
        return self.comments[-1]

    async def until_closed(self) -> list[str]:
        """Every line left, once the server ends the stream."""
        async with asyncio.timeout(WAIT):
            return [line async for line in self._lines]

    async def _read(self, count: int, *, stop_at_comment: bool = False) -> list[dict[str, str]]:
        found: list[dict[str, str]] = []
        current: dict[str, str] = {}
        while len(found) < count or stop_at_comment:
            line = await anext(self._lines)
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                if stop_at_comment:
                    return found
            elif line == "":
                if "data" in current:
                    found.append(current)
                current = {}
            else:
                name, _, value = line.partition(":")
                current[name] = value.removeprefix(" ")
        return found


def signed_webhook(event: webhook.WebhookEvent, settings: Settings, *,
            secret: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A webhook as LiveKit sends it: protobuf JSON, with a JWT over the body's sha256."""
    body = json_format.MessageToJson(event, indent=None).encode()
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    token = (api.AccessToken(settings.livekit_api_key,
                             secret or settings.livekit_api_secret.get_secret_value())
             .with_sha256(digest).with_ttl(timedelta(minutes=5)).to_jwt())
    return body, {"Authorization": token, "Content-Type": "application/webhook+json"}


class SlowLiveKit:
    """An HTTP proxy in front of the devserver's server API that holds the first calls for the
    given delays before passing them on (the rest go straight through): a LiveKit node slow
    under load, as the orchestrator's client sees it."""

    def __init__(self, devserver: DevServer, *, delays: Sequence[float]) -> None:
        self.upstream = devserver.http_url
        self.delays = list(delays)
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SlowLiveKit:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        body = await request.read()
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with self._session.request(request.method, self.upstream + request.path_qs,
                                         data=body, headers=headers) as upstream:
            return web.Response(body=await upstream.read(), status=upstream.status,
                                content_type=upstream.content_type)
