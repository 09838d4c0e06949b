"""Run `python -m devserver` as a child process and mint tokens for it (tests, bench, dev)."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from livekit import api as lk

from deploy.processes import ManagedProcess, ServerProcess, free_port

API_KEY = "devkey"
API_SECRET = "secret"


def agents_status(http_url: str, api_key: str, api_secret: str) -> dict[str, Any]:
    """The devserver's dev-only view of its agent workers and jobs (`GET /devserver/agents`)."""
    token = lk.AccessToken(api_key, api_secret).with_grants(lk.VideoGrants(room_list=True))
    request = urllib.request.Request(f"{http_url}/devserver/agents",
                                     headers={"Authorization": f"Bearer {token.to_jwt()}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return dict(json.loads(reply.read()))


def sip_calls(http_url: str, api_key: str, api_secret: str) -> list[dict[str, Any]]:
    """The devserver's dev-only view of the SIP calls placed lately (`GET /devserver/sip/calls`):
    each call's room, participant, number, trunk, request headers and status."""
    token = lk.AccessToken(api_key, api_secret).with_sip_grants(lk.SIPGrants(admin=True))
    request = urllib.request.Request(f"{http_url}/devserver/sip/calls",
                                     headers={"Authorization": f"Bearer {token.to_jwt()}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return list(json.loads(reply.read())["calls"])


class DevServer(ServerProcess):
    """A devserver child on a free loopback port, with helpers for clients of it."""

    def __init__(
        self,
        *,
        webhooks: Sequence[str] = (),
        sip_script: Path | None = None,
        log_path: Path | None = None,
        port: int | None = None,
        keys: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.keys = keys or {API_KEY: API_SECRET}
        self.api_key, self.api_secret = next(iter(self.keys.items()))
        self.log_path = log_path
        argv = [sys.executable, "-m", "devserver", "--port", str(self.port)]
        for key, secret in self.keys.items():
            argv += ["--keys", f"{key}:{secret}"]
        for url in webhooks:
            argv += ["--webhook", url]
        if sip_script is not None:
            argv += ["--sip-script", str(sip_script)]
        self._process = ManagedProcess("devserver", argv, log_path=log_path)

    @property
    def url(self) -> str:
        """The WebSocket URL clients connect to (what LIVEKIT_URL holds)."""
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process.process is not None
        return self._process.process.pid

    def agents_status(self) -> dict[str, Any]:
        return agents_status(self.http_url, self.api_key, self.api_secret)

    def sip_calls(self) -> list[dict[str, Any]]:
        return sip_calls(self.http_url, self.api_key, self.api_secret)

    def token(
        self,
        identity: str,
        room: str,
        *,
        name: str = "",
        kind: lk.AccessToken.ParticipantKind = "standard",
        metadata: str = "",
        attributes: dict[str, str] | None = None,
        ttl: timedelta = timedelta(minutes=10),
        **grants: object,
    ) -> str:
        """A join token for `room`; keyword grants (can_subscribe=False, ...) override defaults."""
        video = lk.VideoGrants(room_join=True, room=room, **grants)  # type: ignore[arg-type]
        token = (
            lk.AccessToken(self.api_key, self.api_secret)
            .with_identity(identity)
            .with_name(name or identity)
            .with_kind(kind)
            .with_metadata(metadata)
            .with_attributes(attributes or {})
            .with_grants(video)
            .with_ttl(ttl)
        )
        return token.to_jwt()

    def api(self, token: str | None = None) -> lk.LiveKitAPI:
        """An API client with this server's key, or sending `token` verbatim when given.

        Close it with `await client.aclose()` (or use it as an async context manager).
        """
        if token is not None:
            return lk.LiveKitAPI(self.url, token=token)
        return lk.LiveKitAPI(self.url, self.api_key, self.api_secret)

    def grant_token(
        self,
        *,
        identity: str = "admin",
        ttl: timedelta = timedelta(minutes=10),
        sip: lk.SIPGrants | None = None,
        **grants: object,
    ) -> str:
        """A token with exactly these video grants (room_admin=True, room="a", ...) for the API."""
        token = (
            lk.AccessToken(self.api_key, self.api_secret)
            .with_identity(identity)
            .with_grants(lk.VideoGrants(**grants))  # type: ignore[arg-type]
            .with_ttl(ttl)
        )
        if sip is not None:
            token = token.with_sip_grants(sip)
        return token.to_jwt()
