"""Rooms: who is in them, which tracks flow to whom, data relay, lifecycle and room events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

from aiortc import MediaStreamTrack
from livekit.protocol import models
from livekit.protocol.agent_dispatch import RoomAgentDispatch

from devserver.ids import new_id
from devserver.media import Fanout
from devserver.participant import Participant, PublishedTrack
from devserver.serverparticipant import ServerParticipant
from devserver.subscriptions import Subscriptions
from devserver.twirp import TwirpError

log = logging.getLogger("devserver.rooms")

EVENTS = (
    "room_started",
    "room_finished",
    "participant_joined",
    "participant_left",
    "track_published",
    "track_unpublished",
    "participant_updated",
)

Reason: TypeAlias = models.DisconnectReason


class Room(Subscriptions):
    """One room: participants by identity, their tracks and the subscriptions between them."""

    def __init__(
        self,
        manager: RoomManager,
        name: str,
        *,
        empty_timeout: int,
        departure_timeout: int,
        metadata: str,
        max_participants: int,
        agents: list[RoomAgentDispatch],
    ) -> None:
        self._manager = manager
        self.name = name
        self.sid = new_id("RM_")
        self.metadata = metadata
        self.created_at = int(time.time())
        self.empty_timeout = empty_timeout
        self.departure_timeout = departure_timeout
        self.max_participants = max_participants
        self.agents: list[RoomAgentDispatch] = list(agents)
        self.closed = False
        self._participants: dict[str, Participant] = {}
        self._close_timer: asyncio.TimerHandle | None = None
        self._arm_close_timer(empty_timeout)

    def participants(self) -> list[Participant]:
        return list(self._participants.values())

    def get_participant(self, identity: str) -> Participant | None:
        return self._participants.get(identity)

    def to_proto(self) -> models.Room:
        people = self._participants.values()
        return models.Room(
            sid=self.sid,
            name=self.name,
            empty_timeout=self.empty_timeout,
            departure_timeout=self.departure_timeout,
            max_participants=self.max_participants,
            creation_time=self.created_at,
            creation_time_ms=self.created_at * 1000,
            metadata=self.metadata,
            num_participants=sum(1 for p in people if not p.hidden),
            num_publishers=sum(1 for p in people if p.tracks),
            enabled_codecs=[models.Codec(mime="audio/opus")],
        )

    def visible_others(self, participant: Participant) -> list[models.ParticipantInfo]:
        return [
            p.to_proto()
            for p in self._participants.values()
            if p is not participant and not p.hidden
        ]

    # Membership

    async def admit(self, participant: Participant) -> None:
        """Add a participant, evicting an earlier one with the same identity, as LiveKit does."""
        if self.closed:
            raise TwirpError("not_found", "requested room does not exist")
        earlier = self._participants.get(participant.identity)
        if earlier is not None:
            await self.remove(earlier, models.DisconnectReason.DUPLICATE_IDENTITY)
        if self.max_participants and len(self._participants) >= self.max_participants:
            raise TwirpError("resource_exhausted", "room is full")
        self._participants[participant.identity] = participant
        participant.state = models.ParticipantInfo.State.ACTIVE
        if not participant.dependent:
            self._cancel_close_timer()
        self._manager.emit("participant_joined", self, participant)
        self._broadcast_participant(participant)

    async def add_server_participant(
        self,
        identity: str,
        *,
        name: str = "",
        kind: models.ParticipantInfo.Kind = models.ParticipantInfo.Kind.SIP,
        attributes: dict[str, str] | None = None,
        metadata: str = "",
    ) -> ServerParticipant:
        """Admit a participant that lives in the server, such as a simulated phone caller."""
        participant = ServerParticipant(
            self, identity, name=name, kind=kind, attributes=attributes or {}, metadata=metadata
        )
        await self.admit(participant)
        return participant

    async def remove(self, participant: Participant, reason: Reason) -> None:
        """Take a participant out: its tracks, its subscriptions, then its session."""
        if self._participants.get(participant.identity) is not participant:
            return
        del self._participants[participant.identity]
        participant.state = models.ParticipantInfo.State.DISCONNECTED
        participant.disconnect_reason = reason
        for sid in list(participant.tracks):
            await self.unpublish(participant, sid, announce=False)
        for sub in list(participant.subscriptions.values()):
            participant.subscriptions.pop(sub.track.info.sid, None)
            await participant.remove_subscription(sub)
        participant.bump()
        self._broadcast_participant(participant)
        self._manager.emit("participant_left", self, participant)
        await participant.disconnect(reason)
        # As in LiveKit, agents and recorders alone do not keep a room open.
        independent = any(not p.dependent for p in self._participants.values())
        if not participant.dependent and not independent and not self.closed:
            self._arm_close_timer(self.departure_timeout)

    async def remove_participant(self, identity: str) -> None:
        participant = self._require(identity)
        await self.remove(participant, models.DisconnectReason.PARTICIPANT_REMOVED)

    async def close(self, reason: Reason = models.DisconnectReason.ROOM_DELETED) -> None:
        if self.closed:
            return
        self.closed = True
        self._cancel_close_timer()
        for participant in self.participants():
            await self.remove(participant, reason)
        self._manager._forget(self)

    # Tracks

    async def publish(
        self, participant: Participant, info: models.TrackInfo, source: MediaStreamTrack | None
    ) -> PublishedTrack:
        """Make a track visible to everyone and relay its media to whoever may receive it."""
        track = PublishedTrack(info=info, fanout=Fanout(source, info.sid) if source else None)
        if track.fanout is not None:
            track.fanout.start()
        participant.tracks[info.sid] = track
        participant.bump()
        self._broadcast_participant(participant, include_self=True)
        self._manager.emit("track_published", self, participant, info)
        for subscriber in self.participants():
            if subscriber.auto_subscribe or info.sid in subscriber.wanted:
                await self._subscribe(subscriber, participant, track)
        return track

    async def unpublish(
        self, participant: Participant, track_sid: str, *, announce: bool = True
    ) -> None:
        track = participant.tracks.pop(track_sid, None)
        if track is None:
            return
        for subscriber in self.participants():
            sub = subscriber.subscriptions.pop(track_sid, None)
            if sub is not None:
                await subscriber.remove_subscription(sub)
        if track.fanout is not None:
            await track.fanout.close()
        self._manager.emit("track_unpublished", self, participant, track.info)
        if announce:
            participant.send_track_unpublished(track_sid)
            participant.bump()
            self._broadcast_participant(participant, include_self=True)

    def set_track_muted(self, participant: Participant, track_sid: str, muted: bool) -> None:
        track = participant.tracks.get(track_sid)
        if track is None or track.info.muted == muted:
            return
        track.info.muted = muted
        participant.bump()
        self._broadcast_participant(participant, include_self=True)

    # Attributes, permissions and metadata

    async def update_participant(
        self,
        identity: str,
        *,
        metadata: str | None = None,
        attributes: dict[str, str] | None = None,
        name: str | None = None,
        permission: models.ParticipantPermission | None = None,
    ) -> Participant:
        participant = self._require(identity)
        if metadata is not None:
            participant.metadata = metadata
        if name is not None:
            participant.name = name
        if attributes:
            # As in LiveKit, an empty value deletes the key.
            for key, value in attributes.items():
                if value:
                    participant.attributes[key] = value
                else:
                    participant.attributes.pop(key, None)
        was_hidden = participant.hidden
        if permission is not None:
            await self._apply_permission(participant, permission)
        participant.bump()
        if was_hidden and not participant.hidden:
            participant.state = models.ParticipantInfo.State.ACTIVE
        self._broadcast_participant(
            participant, include_self=True, force=was_hidden != participant.hidden
        )
        self._manager.emit("participant_updated", self, participant)
        return participant

    async def _apply_permission(
        self, participant: Participant, permission: models.ParticipantPermission
    ) -> None:
        could_subscribe = participant.permission.can_subscribe
        participant.permission = models.ParticipantPermission()
        participant.permission.CopyFrom(permission)
        if could_subscribe and not permission.can_subscribe:
            for sid in list(participant.subscriptions):
                await self._unsubscribe(participant, sid)
        elif permission.can_subscribe and not could_subscribe:
            await self.subscribe_existing(participant)
        if not permission.can_publish:
            for sid in list(participant.tracks):
                await self.unpublish(participant, sid)

    def update_metadata(self, metadata: str) -> models.Room:
        self.metadata = metadata
        proto = self.to_proto()
        for participant in self.participants():
            participant.send_room_update(proto)
        return proto

    # Data

    def relay_data(
        self, sender: Participant | None, packet: models.DataPacket, *, reliable: bool
    ) -> None:
        """Deliver a packet to everyone it names (everyone else when it names nobody)."""
        if sender is not None:
            packet.participant_identity = sender.identity
            packet.participant_sid = sender.sid
            if packet.HasField("user"):
                packet.user.participant_identity = sender.identity
                packet.user.participant_sid = sender.sid
        targets = set(packet.destination_identities)
        for participant in self.participants():
            if participant is sender or (targets and participant.identity not in targets):
                continue
            participant.send_data_packet(packet, reliable=reliable)

    async def send_data(
        self, packet: models.DataPacket, destination_identities: Iterable[str]
    ) -> None:
        del packet.destination_identities[:]
        packet.destination_identities.extend(destination_identities)
        self.relay_data(None, packet, reliable=packet.kind != models.DataPacket.Kind.LOSSY)

    # Internals

    def _broadcast_participant(
        self, participant: Participant, *, include_self: bool = False, force: bool = False
    ) -> None:
        info = participant.to_proto()
        if participant.hidden and not force:
            if include_self:
                participant.send_participant_update([info])
            return
        if participant.hidden:
            info.state = models.ParticipantInfo.State.DISCONNECTED
        for other in self.participants():
            if other is not participant or include_self:
                other.send_participant_update([info])

    def _require(self, identity: str) -> Participant:
        participant = self._participants.get(identity)
        if participant is None:
            raise TwirpError("not_found", "participant does not exist")
        return participant

    def _arm_close_timer(self, seconds: int) -> None:
        self._cancel_close_timer()
        self._close_timer = asyncio.get_running_loop().call_later(
            max(seconds, 0), self._manager._close_later, self
        )

    def _cancel_close_timer(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None


class RoomManager:
    """All live rooms by name, and the listeners of their events."""

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}
        self._listeners: dict[str, list[Callable[..., None]]] = {e: [] for e in EVENTS}
        self._tasks: set[asyncio.Task[None]] = set()

    def on(self, event: str, callback: Callable[..., None]) -> None:
        if event not in self._listeners:
            raise ValueError(f"unknown room event {event!r}")
        self._listeners[event].append(callback)

    def emit(self, event: str, *args: Any) -> None:
        for callback in self._listeners[event]:
            try:
                callback(*args)
            except Exception:
                log.exception("listener of %s failed", event)

    async def create_room(
        self,
        name: str,
        *,
        empty_timeout: int = 300,
        departure_timeout: int = 20,
        metadata: str = "",
        max_participants: int = 0,
        agents: list[RoomAgentDispatch] | None = None,
    ) -> tuple[Room, bool]:
        """Return the room with this name, creating it (and saying so) if it does not exist."""
        room = self._rooms.get(name)
        if room is not None:
            return room, False
        room = Room(
            self,
            name,
            empty_timeout=empty_timeout or 300,
            departure_timeout=departure_timeout or 20,
            metadata=metadata,
            max_participants=max_participants,
            agents=agents or [],
        )
        self._rooms[name] = room
        log.info("room started %s (%s)", name, room.sid)
        self.emit("room_started", room)
        return room, True

    def get(self, name: str) -> Room | None:
        return self._rooms.get(name)

    def list(self) -> list[Room]:
        return list(self._rooms.values())

    async def delete_room(self, name: str) -> None:
        room = self._rooms.get(name)
        if room is None:
            raise TwirpError("not_found", "requested room does not exist")
        await room.close(models.DisconnectReason.ROOM_DELETED)

    async def close(self) -> None:
        for room in self.list():
            await room.close(models.DisconnectReason.SERVER_SHUTDOWN)
        for task in tuple(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _forget(self, room: Room) -> None:
        if self._rooms.get(room.name) is room:
            del self._rooms[room.name]
            log.info("room finished %s (%s)", room.name, room.sid)
            self.emit("room_finished", room)

    def _close_later(self, room: Room) -> None:
        task = asyncio.get_running_loop().create_task(
            room.close(models.DisconnectReason.ROOM_CLOSED)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
