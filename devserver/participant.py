"""A participant's state and the interface a room uses to reach it, whatever its transport."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from aiortc import MediaStreamTrack
from livekit.protocol import models
from livekit.protocol import rtc as proto_rtc

from devserver.auth import Claims
from devserver.ids import new_id
from devserver.media import Fanout, SubscribedTrack

Kind: TypeAlias = models.ParticipantInfo.Kind


@dataclass
class PublishedTrack:
    """A track a participant publishes, and the fan-out its media goes through."""

    info: models.TrackInfo
    fanout: Fanout | None = None
    # LiveKit tells the publisher once, when the first subscriber takes the track.
    ever_subscribed: bool = False


@dataclass
class Subscription:
    """One subscriber's copy of a published track."""

    track: PublishedTrack
    media: SubscribedTrack | None = None


class RoomHost(Protocol):
    """What a participant may ask of the room it is in; the room implements it."""

    async def publish(self, participant: Participant, info: models.TrackInfo,
                      source: MediaStreamTrack | None) -> PublishedTrack: ...

    async def unpublish(self, participant: Participant, track_sid: str, *,
                        announce: bool = True) -> None: ...

    async def update_participant(
        self, identity: str, *, metadata: str | None = None,
        attributes: dict[str, str] | None = None, name: str | None = None,
        permission: models.ParticipantPermission | None = None) -> Participant: ...

    def relay_data(self, sender: Participant | None, packet: models.DataPacket, *,
                   reliable: bool) -> None: ...

    async def subscribe_existing(self, participant: Participant) -> None: ...

    async def remove(self, participant: Participant,
                     reason: models.DisconnectReason) -> None: ...


def permission_from(claims: Claims) -> models.ParticipantPermission:
    """The permission LiveKit derives from a token's video grant."""
    video = claims.video
    sources = [s.upper() for s in video.can_publish_sources or []]
    return models.ParticipantPermission(
        can_subscribe=video.can_subscribe,
        can_publish=video.can_publish,
        can_publish_data=video.can_publish_data,
        can_publish_sources=sources,
        hidden=bool(video.hidden),
        recorder=bool(video.recorder),
        can_update_metadata=bool(video.can_update_own_metadata),
        agent=bool(video.agent) or claims.kind == models.ParticipantInfo.Kind.AGENT,
        can_subscribe_metrics=bool(video.can_subscribe_metrics),
    )


class Participant:
    """State shared by WebRTC clients and server-side participants; transports override hooks."""

    def __init__(
        self,
        identity: str,
        *,
        name: str = "",
        kind: Kind = models.ParticipantInfo.Kind.STANDARD,
        metadata: str = "",
        attributes: dict[str, str] | None = None,
        permission: models.ParticipantPermission | None = None,
    ) -> None:
        self.identity = identity
        self.sid = new_id("PA_")
        self.kind = kind
        self.name = name
        self.metadata = metadata
        self.attributes: dict[str, str] = dict(attributes or {})
        self.permission = permission or models.ParticipantPermission(
            can_subscribe=True, can_publish=True, can_publish_data=True
        )
        self.tracks: dict[str, PublishedTrack] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.auto_subscribe = True
        # Tracks asked for explicitly, kept so that one published later is subscribed on arrival.
        self.wanted: set[str] = set()
        # Who may subscribe to this participant's tracks, by identity; None lets everyone.
        self.track_permissions: dict[str, proto_rtc.TrackPermission] | None = None
        # Tracks this participant was refused by their publisher, told again once allowed.
        self.denied: set[str] = set()
        self.state: models.ParticipantInfo.State = models.ParticipantInfo.State.JOINING
        self.joined_at_ms = int(time.time() * 1000)
        self.version = 0
        self.disconnect_reason: models.DisconnectReason = models.DisconnectReason.UNKNOWN_REASON

    def allows(self, subscriber_identity: str, track_sid: str) -> bool:
        """Whether this publisher lets `subscriber_identity` receive `track_sid`."""
        if self.track_permissions is None:
            return True
        granted = self.track_permissions.get(subscriber_identity)
        return granted is not None and (granted.all_tracks or track_sid in granted.track_sids)

    @property
    def dependent(self) -> bool:
        """Agents and recorders: LiveKit closes a room left with only these."""
        return (
            self.kind in (models.ParticipantInfo.Kind.AGENT, models.ParticipantInfo.Kind.EGRESS)
            or self.permission.agent
            or self.permission.recorder
        )

    @property
    def hidden(self) -> bool:
        return self.permission.hidden

    def bump(self) -> None:
        """Count a change, so clients keep the newest of two updates."""
        self.version += 1

    def to_proto(self) -> models.ParticipantInfo:
        return models.ParticipantInfo(
            sid=self.sid,
            identity=self.identity,
            state=self.state,
            tracks=[t.info for t in self.tracks.values()],
            metadata=self.metadata,
            joined_at=self.joined_at_ms // 1000,
            joined_at_ms=self.joined_at_ms,
            name=self.name,
            version=self.version,
            permission=self.permission,
            is_publisher=bool(self.tracks),
            kind=self.kind,
            attributes=self.attributes,
            disconnect_reason=self.disconnect_reason,
        )

    # Hooks a transport implements. The room calls them in the order clients must see them.

    def send_participant_update(self, infos: list[models.ParticipantInfo]) -> None:
        """Tell this participant that others (or itself) changed."""

    def send_room_update(self, room: models.Room) -> None:
        """Tell this participant the room's metadata changed."""

    def send_data_packet(self, packet: models.DataPacket, *, reliable: bool) -> None:
        """Deliver a data packet from another participant or the server."""

    def send_track_unpublished(self, track_sid: str) -> None:
        """Confirm to the publisher that one of its tracks is gone."""

    def send_track_subscribed(self, track_sid: str) -> None:
        """Tell this publisher that someone subscribed to its track for the first time."""

    def send_subscription_permission(
        self, publisher_sid: str, track_sid: str, allowed: bool
    ) -> None:
        """Tell this participant a publisher allowed or refused it one track."""

    async def add_subscription(self, sub: Subscription, publisher: Participant) -> None:
        """Start sending a published track's media to this participant."""

    async def remove_subscription(self, sub: Subscription) -> None:
        """Stop sending a track's media to this participant."""

    async def disconnect(self, reason: models.DisconnectReason) -> None:
        """End this participant's session from the server side."""
