"""Which participant receives which track: automatic and explicit subscriptions, permissions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from livekit.protocol import rtc as proto_rtc

from devserver.participant import Participant, PublishedTrack, Subscription


class Subscriptions:
    """The subscription rules of a room; the room provides its participants."""

    if TYPE_CHECKING:
        # Provided by Room.
        def participants(self) -> list[Participant]: ...

        def _require(self, identity: str) -> Participant: ...

    async def subscribe_existing(self, participant: Participant) -> None:
        """Subscribe a participant to every published track it auto-subscribes to or asked for."""
        for publisher in self.participants():
            for track in list(publisher.tracks.values()):
                if participant.auto_subscribe or track.info.sid in participant.wanted:
                    await self._subscribe(participant, publisher, track)

    async def update_subscriptions(
        self, identity: str, track_sids: Iterable[str], subscribe: bool
    ) -> None:
        subscriber = self._require(identity)
        wanted = set(track_sids)
        if subscribe:
            subscriber.wanted |= wanted
        else:
            subscriber.wanted -= wanted
        for publisher in self.participants():
            for sid in wanted & set(publisher.tracks):
                if subscribe:
                    await self._subscribe(subscriber, publisher, publisher.tracks[sid])
                else:
                    await self._unsubscribe(subscriber, sid)

    async def set_track_permissions(
        self, publisher: Participant, permission: proto_rtc.SubscriptionPermission
    ) -> None:
        """Apply a publisher's subscription permissions: revoke at once, grant what is waiting."""
        if permission.all_participants:
            publisher.track_permissions = None
        else:
            by_sid = {p.sid: p.identity for p in self.participants()}
            granted: dict[str, proto_rtc.TrackPermission] = {}
            for entry in permission.track_permissions:
                identity = entry.participant_identity or by_sid.get(entry.participant_sid, "")
                if identity:
                    granted[identity] = entry
            publisher.track_permissions = granted
        for subscriber in self.participants():
            if subscriber is publisher:
                continue
            for sid, track in list(publisher.tracks.items()):
                allowed = publisher.allows(subscriber.identity, sid)
                if not allowed and sid in subscriber.subscriptions:
                    await self._unsubscribe(subscriber, sid)
                    subscriber.denied.add(sid)
                    subscriber.send_subscription_permission(publisher.sid, sid, False)
                elif allowed and sid in subscriber.denied:
                    subscriber.denied.discard(sid)
                    subscriber.send_subscription_permission(publisher.sid, sid, True)
                    if subscriber.auto_subscribe or sid in subscriber.wanted:
                        await self._subscribe(subscriber, publisher, track)

    async def _subscribe(
        self, subscriber: Participant, publisher: Participant, track: PublishedTrack
    ) -> None:
        sid = track.info.sid
        if (
            subscriber is publisher
            # Nobody can attribute a hidden participant's track, so it is not sent.
            or publisher.hidden
            or sid in subscriber.subscriptions
            or not subscriber.permission.can_subscribe
            or sid not in publisher.tracks
        ):
            return
        if not publisher.allows(subscriber.identity, sid):
            if sid not in subscriber.denied:
                subscriber.denied.add(sid)
                subscriber.send_subscription_permission(publisher.sid, sid, False)
            return
        sub = Subscription(track=track)
        subscriber.subscriptions[sid] = sub
        await subscriber.add_subscription(sub, publisher)
        if not track.ever_subscribed:
            track.ever_subscribed = True
            publisher.send_track_subscribed(sid)

    async def _unsubscribe(self, subscriber: Participant, track_sid: str) -> None:
        sub = subscriber.subscriptions.pop(track_sid, None)
        if sub is not None:
            await subscriber.remove_subscription(sub)
