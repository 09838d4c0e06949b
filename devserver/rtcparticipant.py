"""A participant connected over WebRTC: its signal socket and two aiortc peer connections."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Coroutine
from typing import Any

from aiohttp import web
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp
from livekit.protocol import models
from livekit.protocol import rtc as proto_rtc

from devserver.ids import new_id
from devserver.participant import Participant, RoomHost, Subscription

log = logging.getLogger("devserver.rtc")

_MID = re.compile(r"^a=mid:(\S+)", re.M)
_MSID = re.compile(r"^a=msid:\S+ (\S+)", re.M)


def cids_by_mid(sdp: str) -> dict[str, str]:
    """Map each m-section's mid to the track id its msid names (the client's cid)."""
    found: dict[str, str] = {}
    for section in sdp.split("\nm=")[1:]:
        mid, msid = _MID.search(section), _MSID.search(section)
        if mid and msid:
            found[mid.group(1)] = msid.group(1)
    return found


def directions_by_mid(sdp: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for section in sdp.split("\nm=")[1:]:
        mid = _MID.search(section)
        if mid is None:
            continue
        port_zero = section.split(" ", 2)[1:2] == ["0"]
        direction = next(
            (d for d in ("sendrecv", "sendonly", "recvonly", "inactive") if f"a={d}" in section),
            "sendrecv",
        )
        found[mid.group(1)] = "inactive" if port_zero else direction
    return found


class RtcParticipant(Participant):
    """Speaks LiveKit's signal protocol on one WebSocket; media flows through aiortc."""

    def __init__(self, ws: web.WebSocketResponse, room: RoomHost, identity: str,
                 **kwargs: Any) -> None:
        super().__init__(identity, **kwargs)
        self.ws = ws
        self.room = room
        self._out: asyncio.Queue[proto_rtc.SignalResponse | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._config = RTCConfiguration(iceServers=[])
        self.subscriber = RTCPeerConnection(self._config)
        self.publisher: RTCPeerConnection | None = None
        self._channels: dict[str, RTCDataChannel] = {
            "_reliable": self.subscriber.createDataChannel("_reliable", ordered=True),
            "_lossy": self.subscriber.createDataChannel("_lossy", ordered=False, maxRetransmits=0),
        }
        self._offer_lock = asyncio.Lock()
        self._offer_id = 0
        self._renegotiate = False
        self._pending_tracks: dict[str, models.TrackInfo] = {}
        self._publisher_up = asyncio.Event()
        self._publisher_cids: dict[str, str] = {}
        self._early_candidates: dict[int, list[dict[str, Any]]] = {0: [], 1: []}
        self._closed = asyncio.Event()
        assert self.subscriber.sctp is not None
        # The data channels' DTLS transport is the one the whole subscriber bundle rides on.
        self._bundle = self.subscriber.sctp.transport
        self._bundle.on("statechange", self._on_bundle_state)

    # Outbound signalling keeps one order: updates queued before an offer reach the client first.

    def send(self, response: proto_rtc.SignalResponse) -> None:
        if not self._closed.is_set():
            self._out.put_nowait(response)

    async def write_loop(self) -> None:
        """Send queued responses in order; after the last one (a leave), close the socket."""
        while (response := await self._out.get()) is not None:
            if self.ws.closed:
                return
            try:
                await self.ws.send_bytes(response.SerializeToString())
            except (ConnectionError, RuntimeError):
                return
        # The server ended the session: closing ends the reader too, whatever the client does.
        await self.ws.close()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: task failed", self.identity, exc_info=task.exception())

    # Subscriber connection (server offers)

    async def negotiate(self) -> None:
        async with self._offer_lock:
            if self._closed.is_set():
                return
            # aiortc starts the senders of a renegotiation only once DTLS is up: an offer made
            # while the first connection is still being set up would carry silent tracks.
            first = self._offer_id == 0
            connected = self._bundle.state == "connected"
            if self.subscriber.signalingState != "stable" or not (first or connected):
                self._renegotiate = True
                return
            await self.subscriber.setLocalDescription(await self.subscriber.createOffer())
            self._offer_id += 1
            sdp = self.subscriber.localDescription.sdp
            self.send(
                proto_rtc.SignalResponse(
                    offer=proto_rtc.SessionDescription(type="offer", sdp=sdp, id=self._offer_id)
                )
            )

    async def on_answer(self, answer: proto_rtc.SessionDescription) -> None:
        async with self._offer_lock:
            if self.subscriber.signalingState != "have-local-offer":
                return
            await self.subscriber.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
            await self._flush_candidates(proto_rtc.SignalTarget.SUBSCRIBER)
            again, self._renegotiate = self._renegotiate, False
        if again:
            await self.negotiate()

    def _on_bundle_state(self) -> None:
        if self._bundle.state == "connected" and self._renegotiate:
            self._renegotiate = False
            self.spawn(self.negotiate())

    # Publisher connection (client offers)

    def _publisher_pc(self) -> RTCPeerConnection:
        if self.publisher is None:
            pc = RTCPeerConnection(self._config)
            pc.on("datachannel", self._on_datachannel)
            pc.on("track", self._on_track)
            pc.on("connectionstatechange", self._on_publisher_state)
            self.publisher = pc
        return self.publisher

    def _on_publisher_state(self) -> None:
        if self.publisher is not None and self.publisher.connectionState == "connected":
            self._publisher_up.set()

    async def on_offer(self, offer: proto_rtc.SessionDescription) -> None:
        pc = self._publisher_pc()
        self._publisher_cids = cids_by_mid(offer.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
        await self._flush_candidates(proto_rtc.SignalTarget.PUBLISHER)
        await pc.setLocalDescription(await pc.createAnswer())
        self.send(
            proto_rtc.SignalResponse(
                answer=proto_rtc.SessionDescription(
                    type="answer", sdp=pc.localDescription.sdp, id=offer.id
                )
            )
        )
        directions = directions_by_mid(offer.sdp)
        for sid, track in list(self.tracks.items()):
            if directions.get(track.info.mid, "inactive") in ("inactive", "recvonly"):
                await self.room.unpublish(self, sid)

    def _on_track(self, track: MediaStreamTrack) -> None:
        assert self.publisher is not None
        mid = next(
            (t.mid for t in self.publisher.getTransceivers() if t.receiver.track is track), None
        )
        cid = self._publisher_cids.get(mid or "")
        info = self._pending_tracks.pop(cid or "", None)
        if info is None and len(self._pending_tracks) == 1:
            info = self._pending_tracks.pop(next(iter(self._pending_tracks)))
        if info is None:
            log.warning("%s: media for unannounced track (mid %s)", self.identity, mid)
            return
        info.mid = mid or ""
        self.spawn(self._publish_once_up(info, track))

    async def _publish_once_up(self, info: models.TrackInfo, track: MediaStreamTrack) -> None:
        """LiveKit's server learns of a track from its first packet, which cannot come before
        the publisher's connection is up; aiortc announces it with the offer. Published at the
        offer, a track is subscribed to (and the publisher told so) before any of its media can
        be sent, and what the publisher sends meanwhile is dropped: an agent's first words
        would lose their start."""
        await self._publisher_up.wait()
        await self.room.publish(self, info, track)

    def add_track(self, request: proto_rtc.AddTrackRequest) -> None:
        if not self.permission.can_publish:
            return
        kind = request.type
        info = models.TrackInfo(
            sid=new_id("TR_"),
            type=kind,
            name=request.name,
            muted=request.muted,
            source=request.source,
            disable_dtx=request.disable_dtx,
            stereo=request.stereo,
            mime_type="audio/opus" if kind == models.TrackType.AUDIO else "",
            stream=request.stream,
        )
        self._pending_tracks[request.cid] = info
        self.send(
            proto_rtc.SignalResponse(
                track_published=proto_rtc.TrackPublishedResponse(cid=request.cid, track=info)
            )
        )

    # ICE

    async def on_trickle(self, trickle: proto_rtc.TrickleRequest) -> None:
        init = json.loads(trickle.candidateInit or "{}")
        target = int(trickle.target)
        pc = self.subscriber if target == proto_rtc.SignalTarget.SUBSCRIBER else self.publisher
        if pc is None or pc.remoteDescription is None:
            self._early_candidates[target].append(init)
            return
        await self._add_candidate(pc, init)

    async def _flush_candidates(self, target: int) -> None:
        pc = self.subscriber if target == proto_rtc.SignalTarget.SUBSCRIBER else self.publisher
        pending, self._early_candidates[target] = self._early_candidates[target], []
        for init in pending:
            if pc is not None:
                await self._add_candidate(pc, init)

    @staticmethod
    async def _add_candidate(pc: RTCPeerConnection, init: dict[str, Any]) -> None:
        text = str(init.get("candidate") or "")
        if not text:
            return
        candidate = candidate_from_sdp(
            text.split(":", 1)[1] if text.startswith("candidate:") else text
        )
        candidate.sdpMid = init.get("sdpMid")
        candidate.sdpMLineIndex = init.get("sdpMLineIndex")
        try:
            await pc.addIceCandidate(candidate)
        except (ValueError, KeyError) as err:
            log.debug("ignored ICE candidate %r: %s", text, err)

    # Data

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        reliable = channel.label != "_lossy"

        @channel.on("message")
        def on_message(message: bytes | str) -> None:
            if isinstance(message, str) or not self.permission.can_publish_data:
                return
            packet = models.DataPacket()
            try:
                packet.ParseFromString(message)
            except Exception:
                log.info("%s: dropped an undecodable data packet", self.identity)
                return
            self.room.relay_data(self, packet, reliable=reliable)

    def send_data_packet(self, packet: models.DataPacket, *, reliable: bool) -> None:
        channel = self._channels["_reliable" if reliable else "_lossy"]
        if channel.readyState == "open":
            channel.send(packet.SerializeToString())
        elif channel.readyState == "connecting":
            payload = packet.SerializeToString()
            channel.once("open", lambda: channel.send(payload))

    # Room hooks

    def send_participant_update(self, infos: list[models.ParticipantInfo]) -> None:
        self.send(proto_rtc.SignalResponse(update=proto_rtc.ParticipantUpdate(participants=infos)))

    def send_room_update(self, room: models.Room) -> None:
        self.send(proto_rtc.SignalResponse(room_update=proto_rtc.RoomUpdate(room=room)))

    def send_track_unpublished(self, track_sid: str) -> None:
        self.send(
            proto_rtc.SignalResponse(
                track_unpublished=proto_rtc.TrackUnpublishedResponse(track_sid=track_sid)
            )
        )

    def send_track_subscribed(self, track_sid: str) -> None:
        self.send(
            proto_rtc.SignalResponse(
                track_subscribed=proto_rtc.TrackSubscribed(track_sid=track_sid)
            )
        )

    def send_subscription_permission(
        self, publisher_sid: str, track_sid: str, allowed: bool
    ) -> None:
        self.send(
            proto_rtc.SignalResponse(
                subscription_permission_update=proto_rtc.SubscriptionPermissionUpdate(
                    participant_sid=publisher_sid, track_sid=track_sid, allowed=allowed
                )
            )
        )

    async def add_subscription(self, sub: Subscription, publisher: Participant) -> None:
        if sub.track.fanout is None or self._closed.is_set():
            return
        sub.media = sub.track.fanout.subscribe()
        transceiver = self.subscriber.addTransceiver(sub.media, direction="sendonly")
        # The client attributes a track by its stream id "<participant sid>|<track sid>".
        transceiver.sender._stream_id = f"{publisher.sid}|{sub.track.info.sid}"
        self.spawn(self.negotiate())

    async def remove_subscription(self, sub: Subscription) -> None:
        if sub.media is None:
            return
        for transceiver in self.subscriber.getTransceivers():
            if transceiver.sender.track is sub.media:
                transceiver.sender.replaceTrack(None)
                transceiver.direction = "inactive"
        if sub.track.fanout is not None:
            sub.track.fanout.unsubscribe(sub.media)
        if not self._closed.is_set():
            self.spawn(self.negotiate())

    async def disconnect(self, reason: models.DisconnectReason) -> None:
        self.send(
            proto_rtc.SignalResponse(
                leave=proto_rtc.LeaveRequest(
                    can_reconnect=False,
                    reason=reason,
                    action=proto_rtc.LeaveRequest.Action.DISCONNECT,
                )
            )
        )
        self._closed.set()
        self._out.put_nowait(None)
        for task in tuple(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        await self.subscriber.close()
        if self.publisher is not None:
            await self.publisher.close()

    async def wait_closed(self) -> None:
        await self._closed.wait()
