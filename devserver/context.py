"""What the devserver's modules share: its configuration and the server context."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from devserver.auth import Claims, verify_token
from devserver.rooms import RoomManager
from devserver.twirp import TwirpRouter
from devserver.webhooks import WebhookSender


@dataclass
class Config:
    """What `python -m devserver` is started with."""

    keys: dict[str, str] = field(default_factory=lambda: {"devkey": "secret"})
    host: str = "127.0.0.1"
    port: int = 7880
    webhooks: list[str] = field(default_factory=list)
    sip_script: Path | None = None

    @property
    def api_key(self) -> str:
        """The first key: LiveKit signs webhooks with it."""
        return next(iter(self.keys))

    @property
    def api_secret(self) -> str:
        return self.keys[self.api_key]


@dataclass
class ServerContext:
    """Everything the server's modules share."""

    config: Config
    rooms: RoomManager
    router: TwirpRouter
    webhooks: WebhookSender

    def verify(self, token: str) -> Claims:
        return verify_token(token, self.config.keys)


CTX_KEY = web.AppKey("devserver_context", ServerContext)
