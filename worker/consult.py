"""Who hears whom while a human is briefed and after they connect, in the visitor's own room.

Self-hosted LiveKit has no MoveParticipant, so isolation is made of what LiveKit enforces on the
server: the agent's own track permissions (its voice goes to the human alone while it briefs
them; the visitor is allowed only the hold track), the web human's token (they join unable to
publish, and are granted the microphone on connect), and server-side subscription updates (the
human is not subscribed to the visitor until they connect; a phone human, who cannot be kept
from publishing, has the visitor unsubscribed from their track the moment it is published, so
the first instant of it may reach the visitor on a slow server).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from livekit import api, rtc
from livekit.agents import stt, vad

logger = logging.getLogger("baton.worker.consult")


def heard_by_all(room: rtc.Room) -> None:
    """The agent's voice is everyone's again: after a handoff that failed before any human
    was in the room."""
    room.local_participant.set_track_subscription_permissions(allow_all_participants=True)


class Consult:
    """The room's audio routes for one handoff, between the visitor and the human known by
    `human_identity` (known before they join: a phone human's is chosen when dialling)."""

    def __init__(self, room: rtc.Room, livekit: api.LiveKitAPI, visitor: rtc.RemoteParticipant,
                 human_identity: str) -> None:
        self.room = room
        self.livekit = livekit
        self.visitor = visitor
        self.human_identity = human_identity
        self.open = False
        self.hold_sid: str | None = None
        self._on_published = self._keep_apart
        # From now on, whatever the human publishes is kept from the visitor at once.
        self.room.on("track_published", self._on_published)

    async def separate(self, human: rtc.RemoteParticipant) -> None:
        """The visitor and the human stop hearing each other, from the moment the human is in
        the room (the visitor may still be hearing the agent's line)."""
        await self._subscribe(human.identity, _audio_sids(self.visitor), False)
        await self._subscribe(self.visitor.identity, _audio_sids(human), False)

    def isolate(self, human: rtc.RemoteParticipant, hold_sid: str | None) -> None:
        """For the briefing: the visitor hears the hold track only, the human hears the agent
        only."""
        self.hold_sid = hold_sid
        self.room.local_participant.set_track_subscription_permissions(
            allow_all_participants=False, participant_permissions=[
                rtc.ParticipantTrackPermission(participant_identity=self.visitor.identity,
                                               allowed_track_sids=[hold_sid] if hold_sid else []),
                rtc.ParticipantTrackPermission(participant_identity=human.identity,
                                               allowed_track_sids=self._voice())])

    async def connect(self, human: rtc.RemoteParticipant) -> None:
        """Everyone hears everyone; a web human may publish their microphone now.

        The visitor and the human are allowed the agent's voice by name rather than everyone
        everything: LiveKit's permissions have no "all but the hold track", and the hold
        track's removal reaches the server later, by renegotiation, so opening to all would
        send the human the hold audio for a moment (and their client would log an error for
        a track it can no longer attribute)."""
        self.open = True
        self.room.off("track_published", self._on_published)
        voice = self._voice()
        self.room.local_participant.set_track_subscription_permissions(
            allow_all_participants=False, participant_permissions=[
                rtc.ParticipantTrackPermission(participant_identity=identity,
                                               allowed_track_sids=voice)
                for identity in (self.visitor.identity, human.identity)])
        if human.kind != rtc.ParticipantKind.PARTICIPANT_KIND_SIP:
            await self.livekit.room.update_participant(api.UpdateParticipantRequest(
                room=self.room.name, identity=human.identity,
                permission=api.ParticipantPermission(
                    can_subscribe=True, can_publish=True, can_publish_data=True,
                    can_publish_sources=[api.TrackSource.MICROPHONE])))
        await self._subscribe(human.identity, _audio_sids(self.visitor), True)
        await self._subscribe(self.visitor.identity, _audio_sids(human), True)

    def release(self) -> None:
        """After a failed handoff: the visitor hears the agent's voice again, and only the
        visitor, for the reason given in `connect` (the human may still be in the room)."""
        self.room.off("track_published", self._on_published)
        self.room.local_participant.set_track_subscription_permissions(
            allow_all_participants=False, participant_permissions=[
                rtc.ParticipantTrackPermission(participant_identity=self.visitor.identity,
                                               allowed_track_sids=self._voice())])

    def _voice(self) -> list[str]:
        """The agent's audio tracks but the hold track."""
        return [sid for sid, pub in self.room.local_participant.track_publications.items()
                if sid != self.hold_sid and pub.kind == rtc.TrackKind.KIND_AUDIO]

    def _keep_apart(self, publication: rtc.RemoteTrackPublication,
                    participant: rtc.RemoteParticipant) -> None:
        if self.open or publication.kind != rtc.TrackKind.KIND_AUDIO:
            return
        if participant.identity == self.human_identity:
            _spawn(self._subscribe(self.visitor.identity, [publication.sid], False))
        elif participant.identity == self.visitor.identity \
                and self.human_identity in self.room.remote_participants:
            _spawn(self._subscribe(self.human_identity, [publication.sid], False))

    async def _subscribe(self, subscriber: str, track_sids: list[str], subscribe: bool) -> None:
        if not track_sids:
            return
        await self.livekit.room.update_subscriptions(api.UpdateSubscriptionsRequest(
            room=self.room.name, identity=subscriber, track_sids=track_sids,
            subscribe=subscribe))


def _audio_sids(participant: rtc.RemoteParticipant) -> list[str]:
    return [sid for sid, pub in participant.track_publications.items()
            if pub.kind == rtc.TrackKind.KIND_AUDIO]


_pending: set[asyncio.Task[None]] = set()


def _spawn(step: Awaitable[None]) -> None:
    """Run a subscription change from a room event handler, keeping the task referenced and
    its failure logged."""

    async def run() -> None:
        try:
            await step
        except api.TwirpError as exc:
            logger.error("could not keep the visitor and the human apart: %s", exc.code)

    task = asyncio.create_task(run(), name="baton-consult-subscription")
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def transcribe(room: rtc.Room, participant: rtc.RemoteParticipant,
                     recognizer: stt.STT[Any], voice_activity: vad.VAD,
                     heard: Callable[[str], Awaitable[None]]) -> None:
    """Transcribe everything `participant` says, each finished phrase given to `heard`, until
    cancelled. The human is not the session's linked participant, so they get their own
    recognizer: a streaming one has their phrases cut by its server, any other is given them
    cut by `voice_activity`."""
    track = await _audio_track(room, participant)
    recognition = recognizer.stream() if recognizer.capabilities.streaming else \
        stt.StreamAdapter(stt=recognizer, vad=voice_activity).stream()
    audio = rtc.AudioStream(track)

    async def feed() -> None:
        async for event in audio:
            recognition.push_frame(event.frame)

    feeder = asyncio.create_task(feed(), name="baton-human-audio")
    try:
        async for event in recognition:
            if event.type == stt.SpeechEventType.FINAL_TRANSCRIPT and event.alternatives:
                text = event.alternatives[0].text.strip()
                if text:
                    await heard(text)
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        await recognition.aclose()
        await audio.aclose()


async def _audio_track(room: rtc.Room, participant: rtc.RemoteParticipant) -> rtc.Track:
    """The participant's first audio track, once the agent is subscribed to it."""
    found: asyncio.Future[rtc.Track] = asyncio.get_running_loop().create_future()

    def subscribed(track: rtc.Track, _publication: rtc.RemoteTrackPublication,
                   who: rtc.RemoteParticipant) -> None:
        if who.identity == participant.identity and track.kind == rtc.TrackKind.KIND_AUDIO \
                and not found.done():
            found.set_result(track)

    room.on("track_subscribed", subscribed)
    try:
        for publication in participant.track_publications.values():
            if publication.kind == rtc.TrackKind.KIND_AUDIO and publication.track is not None:
                return publication.track
        return await found
    finally:
        room.off("track_subscribed", subscribed)


@contextlib.asynccontextmanager
async def connect_wanted(room: rtc.Room, human: rtc.RemoteParticipant, *,
                         button: Callable[[], Awaitable[bool]], recognizer: stt.STT[Any],
                         voice_activity: vad.VAD) -> AsyncIterator[asyncio.Future[None]]:
    """Done when the human asks to talk to the visitor: `button` (the dashboard's connect)
    returning True, or on the phone 1 pressed or "connect" said, even while being briefed;
    failed with HumanLeft when they hang up first."""
    wanted: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def done(outcome: BaseException | None) -> None:
        if not wanted.done():
            if outcome is None:
                wanted.set_result(None)
            else:
                wanted.set_exception(outcome)

    def dtmf(event: rtc.SipDTMF) -> None:
        if event.digit == "1" and event.participant is not None \
                and event.participant.identity == human.identity:
            done(None)

    def left(participant: rtc.RemoteParticipant) -> None:
        if participant.identity == human.identity:
            done(HumanLeft())

    async def heard(text: str) -> None:
        if "connect" in text.lower():
            done(None)

    async def pressed() -> None:
        if await button():
            done(None)

    room.on("sip_dtmf_received", dtmf)
    room.on("participant_disconnected", left)
    waiters = [asyncio.create_task(pressed(), name="baton-connect-button")]
    if human.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP:
        waiters.append(asyncio.create_task(
            transcribe(room, human, recognizer, voice_activity, heard),
            name="baton-consult-listen"))
    try:
        yield wanted
    finally:
        room.off("sip_dtmf_received", dtmf)
        room.off("participant_disconnected", left)
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


class HumanLeft(Exception):
    """The human hung up before connecting."""
