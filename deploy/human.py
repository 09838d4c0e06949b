"""A scripted human agent, as the tests and `bench.handoff` drive one: signs in over HTTP, keeps
the dashboard's queue stream open (which keeps them online), and joins a room the way the
dashboard does: listening only in consult, publishing once the agent grants the microphone."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
from livekit import rtc

from deploy.visitor import Visitor


class HumanAgent:
    def __init__(self, client: httpx.AsyncClient, username: str, password: str) -> None:
        self.client = client
        self.username = username
        self.password = password
        self.token = ""
        self.updates: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._stream: asyncio.Task[None] | None = None
        self.ears = Visitor(auto_subscribe=False)
        self._joined = False

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def sign_in(self) -> None:
        response = await self.client.post("/v1/humans/sign-in", json={
            "username": self.username, "password": self.password})
        assert response.status_code == 200, response.text
        self.token = response.json()["token"]

    async def on_duty(self) -> None:
        """Open the queue stream, as the dashboard does; returns once the queue arrived."""
        arrived = asyncio.Event()
        self._stream = asyncio.create_task(self._follow(arrived))
        await arrived.wait()

    async def _follow(self, arrived: asyncio.Event) -> None:
        async with self.client.stream("GET", "/v1/handoffs/stream", headers=self.auth,
                                      timeout=None) as response:
            kind = ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind == "queue":
                    arrived.set()
                elif line.startswith("data:") and kind == "handoff":
                    self.updates.append(json.loads(line[5:]))
                    self._changed.set()

    async def sees(self, state: str) -> dict[str, Any]:
        """The first update of a handoff of theirs in `state`."""
        while True:
            for update in self.updates:
                if update["state"] == state:
                    return update
            self._changed.clear()
            await self._changed.wait()

    async def accept(self, handoff_id: str) -> dict[str, Any]:
        response = await self.client.post(f"/v1/handoffs/{handoff_id}/accept",
                                          headers=self.auth)
        assert response.status_code == 200, response.text
        session: dict[str, Any] = response.json()
        return session

    async def decline(self, handoff_id: str) -> None:
        response = await self.client.post(f"/v1/handoffs/{handoff_id}/decline",
                                          headers=self.auth)
        assert response.status_code == 200, response.text

    async def join(self, session: dict[str, Any]) -> None:
        """Join in consult: listening to the agent only, not publishing (the token forbids it
        until connect)."""
        room = self.ears.room

        def published(publication: rtc.RemoteTrackPublication,
                      participant: rtc.RemoteParticipant) -> None:
            if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
                publication.set_subscribed(True)

        room.on("track_published", published)
        await self.ears.join(session["url"], session["token"], publish=False)
        self._joined = True
        for participant in room.remote_participants.values():
            for publication in participant.track_publications.values():
                published(publication, participant)

    async def connect(self, handoff_id: str) -> None:
        """Press connect; once the agent grants the microphone, publish it and listen to
        everyone."""
        room = self.ears.room
        granted = asyncio.Event()

        def permissions(participant: rtc.Participant, permission: Any) -> None:
            if participant.identity == room.local_participant.identity \
                    and permission.can_publish:
                granted.set()

        room.on("participant_permissions_changed", permissions)
        response = await self.client.post(f"/v1/handoffs/{handoff_id}/connect",
                                          headers=self.auth)
        assert response.status_code == 200, response.text
        await granted.wait()
        await self.ears.publish_microphone()
        for participant in room.remote_participants.values():
            for publication in participant.track_publications.values():
                publication.set_subscribed(True)
        room.on("track_published", lambda publication, _p: publication.set_subscribed(True))

    def reset(self) -> None:
        """Ready for the next handoff: its updates and a fresh connection to its room."""
        self.updates.clear()
        self.ears = Visitor(auto_subscribe=False)
        self._joined = False

    async def leave_room(self) -> None:
        if self._joined:
            self._joined = False
            await self.ears.leave()

    async def off_duty(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stream
        await self.leave_room()
