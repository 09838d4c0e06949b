"""Webhooks: room events as signed protobuf-JSON WebhookEvents, delivered in order per room."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
import logging
import time
from collections.abc import Sequence

import aiohttp
from google.protobuf import json_format
from livekit.api import AccessToken
from livekit.protocol import models, webhook

from devserver.ids import new_id
from devserver.participant import Participant
from devserver.rooms import Room, RoomManager

log = logging.getLogger("devserver.webhooks")

# Delays between attempts; LiveKit also gives up after a few tries.
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)


class WebhookSender:
    """Posts events to every URL; one queue per room keeps its events in order."""

    def __init__(self, urls: Sequence[str], api_key: str, api_secret: str) -> None:
        self.urls = list(urls)
        self._api_key = api_key
        self._api_secret = api_secret
        self._queues: dict[str, asyncio.Queue[webhook.WebhookEvent]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    def attach(self, rooms: RoomManager) -> None:
        rooms.on("room_started", lambda r: self._room_event("room_started", r))
        rooms.on("room_finished", lambda r: self._room_event("room_finished", r))
        rooms.on(
            "participant_joined", lambda r, p: self._participant_event("participant_joined", r, p)
        )
        rooms.on("participant_left", lambda r, p: self._participant_event("participant_left", r, p))
        rooms.on("track_published", lambda r, p, t: self._track_event("track_published", r, p, t))
        rooms.on(
            "track_unpublished", lambda r, p, t: self._track_event("track_unpublished", r, p, t)
        )

    def _room_event(self, name: str, room: Room) -> None:
        self.send(room.name, webhook.WebhookEvent(event=name, room=room.to_proto()))

    def _participant_event(self, name: str, room: Room, participant: Participant) -> None:
        self.send(
            room.name,
            webhook.WebhookEvent(
                event=name, room=room.to_proto(), participant=participant.to_proto()
            ),
        )

    def _track_event(
        self, name: str, room: Room, participant: Participant, track: models.TrackInfo
    ) -> None:
        self.send(
            room.name,
            webhook.WebhookEvent(
                event=name, room=room.to_proto(), participant=participant.to_proto(), track=track
            ),
        )

    def send(self, key: str, event: webhook.WebhookEvent) -> None:
        """Queue an event; `key` (the room name) orders delivery. Never blocks the caller."""
        if not self.urls:
            return
        event.id = new_id("EV_")
        event.created_at = int(time.time())
        queue = self._queues.setdefault(key, asyncio.Queue())
        queue.put_nowait(event)
        if key not in self._workers:
            self._workers[key] = asyncio.get_running_loop().create_task(self._drain(key, queue))

    async def _drain(self, key: str, queue: asyncio.Queue[webhook.WebhookEvent]) -> None:
        try:
            while not queue.empty():
                event = queue.get_nowait()
                body = json_format.MessageToJson(event, indent=None)
                for url in self.urls:
                    await self._deliver(url, body, event.event)
        finally:
            del self._workers[key]
            if queue.empty():
                self._queues.pop(key, None)
            else:
                self._workers[key] = asyncio.get_running_loop().create_task(self._drain(key, queue))

    async def _deliver(self, url: str, body: str, name: str) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        token = (
            AccessToken(self._api_key, self._api_secret)
            .with_sha256(digest)
            .with_ttl(datetime.timedelta(minutes=5))
            .to_jwt()
        )
        headers = {"Authorization": token, "Content-Type": "application/webhook+json"}
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
            await asyncio.sleep(delay)
            try:
                async with self._session.post(url, data=body.encode(), headers=headers) as resp:
                    if resp.status < 400:
                        return
                    reason = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as err:
                reason = repr(err)
            log.info("webhook %s to %s failed (attempt %d): %s", name, url, attempt + 1, reason)
        log.warning("webhook %s to %s dropped after %d attempts", name, url, len(RETRY_DELAYS) + 1)

    async def close(self) -> None:
        for task in tuple(self._workers.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
