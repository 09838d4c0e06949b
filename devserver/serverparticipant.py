"""Participants living inside the server (SIP callers): publish audio, hear the room, get data."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from livekit.protocol import models

from devserver.ids import new_id
from devserver.media import MixedAudio
from devserver.participant import Kind, Participant, RoomHost, Subscription

log = logging.getLogger("devserver.serverparticipant")


class ServerParticipant(Participant):
    """A participant with no WebRTC connection, driven by server code such as the SIP simulator."""

    def __init__(
        self,
        room: RoomHost,
        identity: str,
        *,
        name: str,
        kind: Kind,
        attributes: dict[str, str],
        metadata: str,
    ) -> None:
        super().__init__(identity, name=name, kind=kind, metadata=metadata, attributes=attributes)
        self.room = room
        # It hears nothing until subscribe_audio() asks for the room's audio.
        self.auto_subscribe = False
        self._heard: list[MixedAudio] = []
        self._pumps: dict[str, asyncio.Task[None]] = {}
        self._data_callbacks: list[Callable[[models.DataPacket], None]] = []
        self.left = asyncio.Event()

    async def publish_audio(
        self,
        track: MediaStreamTrack,
        *,
        name: str,
        source: models.TrackSource = models.TrackSource.MICROPHONE,
    ) -> models.TrackInfo:
        info = models.TrackInfo(
            sid=new_id("TR_"),
            type=models.TrackType.AUDIO,
            name=name,
            source=source,
            mime_type="audio/opus",
        )
        await self.room.publish(self, info, track)
        return info

    async def update_attributes(self, attrs: dict[str, str]) -> None:
        await self.room.update_participant(self.identity, attributes=attrs)

    async def send_data(self, packet: models.DataPacket) -> None:
        self.room.relay_data(self, packet, reliable=packet.kind != models.DataPacket.Kind.LOSSY)

    def on_data(self, callback: Callable[[models.DataPacket], None]) -> None:
        """Call `callback` with every data packet delivered to this participant."""
        self._data_callbacks.append(callback)

    def subscribe_audio(self) -> MediaStreamTrack:
        """What this participant hears: every audio track it may receive, mixed, now and later."""
        heard = MixedAudio()
        self._heard.append(heard)
        if not self.auto_subscribe:
            self.auto_subscribe = True
            self._spawn(self.room.subscribe_existing(self))
        return heard

    async def leave(
        self,
        reason: models.DisconnectReason = models.DisconnectReason.CLIENT_INITIATED,
    ) -> None:
        await self.room.remove(self, reason)

    # Hooks called by the room

    def send_data_packet(self, packet: models.DataPacket, *, reliable: bool) -> None:
        for callback in self._data_callbacks:
            try:
                callback(packet)
            except Exception:
                log.exception("data callback of %s failed", self.identity)

    async def add_subscription(self, sub: Subscription, publisher: Participant) -> None:
        if sub.track.fanout is None or sub.track.info.type != models.TrackType.AUDIO:
            return
        sub.media = sub.track.fanout.subscribe()
        self._pumps[sub.track.info.sid] = asyncio.get_running_loop().create_task(self._pump(sub))

    async def remove_subscription(self, sub: Subscription) -> None:
        if sub.media is not None and sub.track.fanout is not None:
            sub.track.fanout.unsubscribe(sub.media)
        task = self._pumps.pop(sub.track.info.sid, None)
        if task is not None:
            task.cancel()
        for heard in self._heard:
            heard.forget(sub.track.info.sid)

    async def disconnect(self, reason: models.DisconnectReason) -> None:
        for task in self._pumps.values():
            task.cancel()
        self._pumps.clear()
        for heard in self._heard:
            heard.end()
        self.left.set()

    async def _pump(self, sub: Subscription) -> None:
        assert sub.media is not None
        try:
            while True:
                frame = await sub.media.recv()
                for heard in self._heard:
                    heard.feed(sub.track.info.sid, frame)
        except MediaStreamError:
            return

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._pumps[f"subscribe-{id(task)}"] = task
        task.add_done_callback(lambda t: self._pumps.pop(f"subscribe-{id(t)}", None))
