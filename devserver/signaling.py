"""The /rtc endpoints: token checks, the two-connection signal session, and validate answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import WSMsgType, web
from google.protobuf.message import DecodeError
from livekit.protocol import models
from livekit.protocol import rtc as proto_rtc

from devserver.auth import Claims, require_room_join, verify_token
from devserver.context import ServerContext
from devserver.participant import permission_from
from devserver.rooms import Room
from devserver.rtcparticipant import RtcParticipant
from devserver.twirp import TwirpError

log = logging.getLogger("devserver.signaling")

SERVER_VERSION = "1.9.0"
# Signal protocol 16 predates the single peer connection, which this server does not offer.
SERVER_PROTOCOL = 16
PING_INTERVAL = 5
PING_TIMEOUT = 15


def install(app: web.Application, ctx: ServerContext) -> None:
    signaling = Signaling(ctx)
    app.router.add_get("/rtc", signaling.rtc)
    app.router.add_get("/rtc/validate", signaling.validate)
    # Answering /rtc/v1 with 404 is what makes both SDKs fall back to /rtc.
    app.router.add_get("/rtc/v1", _not_found)
    app.router.add_get("/rtc/v1/validate", _not_found)
    app.router.add_get("/settings/regions", _regions)


async def _not_found(request: web.Request) -> web.Response:
    return web.Response(status=404, text="404 page not found", headers=_cors())


async def _regions(request: web.Request) -> web.Response:
    return web.json_response({"regions": []})


def _cors() -> dict[str, str]:
    return {"Access-Control-Allow-Origin": "*"}


class Signaling:
    """Admits WebSocket clients to rooms and runs their signal sessions."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def _claims(self, request: web.Request) -> Claims:
        """Check the request's token like LiveKit's RTC service; errors are plain-text HTTP."""
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
        token = token or request.query.get("access_token", "")
        if not token:
            raise web.HTTPUnauthorized(text="permissions denied", headers=_cors())
        try:
            claims = verify_token(token, self.ctx.config.keys)
            require_room_join(claims, claims.video.room)
        except TwirpError as err:
            raise web.HTTPUnauthorized(text=err.msg, headers=_cors()) from err
        if not claims.identity:
            raise web.HTTPBadRequest(text="identity cannot be empty", headers=_cors())
        if not claims.video.room:
            raise web.HTTPBadRequest(text="no room name", headers=_cors())
        return claims

    async def validate(self, request: web.Request) -> web.Response:
        self._claims(request)
        return web.Response(text="success", headers=_cors())

    async def _room_for(self, claims: Claims) -> Room:
        config = claims.room_config
        if config is None:
            room, _ = await self.ctx.rooms.create_room(claims.video.room)
            return room
        room, _ = await self.ctx.rooms.create_room(
            claims.video.room,
            empty_timeout=config.empty_timeout,
            departure_timeout=config.departure_timeout,
            metadata=config.metadata,
            max_participants=config.max_participants,
            agents=list(config.agents),
        )
        return room

    async def rtc(self, request: web.Request) -> web.StreamResponse:
        claims = self._claims(request)
        room = await self._room_for(claims)
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        participant = RtcParticipant(
            ws,
            room,
            claims.identity,
            name=claims.name,
            kind=claims.kind,
            metadata=claims.metadata,
            attributes=claims.attributes,
            permission=permission_from(claims),
        )
        participant.auto_subscribe = request.query.get("auto_subscribe", "1") in ("1", "true")
        writer = asyncio.get_running_loop().create_task(participant.write_loop())
        reason = models.DisconnectReason.CLIENT_INITIATED
        try:
            reason = await self._session(room, participant, ws)
        finally:
            if room.get_participant(participant.identity) is participant:
                await room.remove(participant, reason)
            else:
                await participant.disconnect(participant.disconnect_reason)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(writer, 5)
            await ws.close()
        return ws

    async def _session(
        self, room: Room, participant: RtcParticipant, ws: web.WebSocketResponse
    ) -> models.DisconnectReason:
        """Run the session until it ends; returns why, for a participant still in the room."""
        try:
            await room.admit(participant)
        except TwirpError as err:
            log.info("join refused for %s in %s: %s", participant.identity, room.name, err.msg)
            participant.disconnect_reason = models.DisconnectReason.JOIN_FAILURE
            return models.DisconnectReason.JOIN_FAILURE
        participant.send(proto_rtc.SignalResponse(join=self._join_response(room, participant)))
        await participant.negotiate()
        participant.spawn(room.subscribe_existing(participant))
        while True:
            try:
                # Clients ping every PING_INTERVAL; like LiveKit, give up on a silent one.
                message = await ws.receive(timeout=PING_TIMEOUT)
            except TimeoutError:
                log.info(
                    "%s: no message for %d s, disconnecting", participant.identity, PING_TIMEOUT
                )
                return models.DisconnectReason.SIGNAL_CLOSE
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return models.DisconnectReason.CLIENT_INITIATED
            if message.type == WSMsgType.ERROR:
                return models.DisconnectReason.SIGNAL_CLOSE
            if message.type != WSMsgType.BINARY:
                continue
            request = proto_rtc.SignalRequest()
            try:
                request.ParseFromString(message.data)
            except DecodeError:
                log.info("%s sent an undecodable signal message", participant.identity)
                continue
            if not await self._handle(room, participant, request):
                return models.DisconnectReason.CLIENT_INITIATED

    def _join_response(self, room: Room, participant: RtcParticipant) -> proto_rtc.JoinResponse:
        return proto_rtc.JoinResponse(
            room=room.to_proto(),
            participant=participant.to_proto(),
            other_participants=room.visible_others(participant),
            server_version=SERVER_VERSION,
            server_info=models.ServerInfo(
                edition=models.ServerInfo.Edition.Standard,
                version=SERVER_VERSION,
                protocol=SERVER_PROTOCOL,
                node_id="ND_devserver",
                agent_protocol=1,
            ),
            subscriber_primary=True,
            # As LiveKit (1.8+): a publisher negotiates its connection at join, and the SDKs
            # then offer each new track at once instead of debouncing negotiation by 150 ms.
            fast_publish=participant.permission.can_publish,
            ping_interval=PING_INTERVAL,
            ping_timeout=PING_TIMEOUT,
            # Sessions cannot be resumed here, so clients reconnect from scratch.
            client_configuration=models.ClientConfiguration(
                resume_connection=models.ClientConfigSetting.DISABLED
            ),
        )

    async def _handle(
        self, room: Room, p: RtcParticipant, request: proto_rtc.SignalRequest
    ) -> bool:
        """Act on one client request; False ends the session."""
        which = request.WhichOneof("message")
        try:
            if which == "offer":
                await p.on_offer(request.offer)
            elif which == "answer":
                await p.on_answer(request.answer)
            elif which == "trickle":
                await p.on_trickle(request.trickle)
            elif which == "add_track":
                p.add_track(request.add_track)
            elif which == "mute":
                room.set_track_muted(p, request.mute.sid, request.mute.muted)
            elif which == "subscription":
                await room.update_subscriptions(
                    p.identity, request.subscription.track_sids, request.subscription.subscribe
                )
            elif which == "subscription_permission":
                await room.set_track_permissions(p, request.subscription_permission)
            elif which == "update_metadata":
                await self._update_own_metadata(room, p, request.update_metadata)
            elif which == "ping_req":
                p.send(
                    proto_rtc.SignalResponse(
                        pong_resp=proto_rtc.Pong(
                            last_ping_timestamp=request.ping_req.timestamp, timestamp=_now_ms()
                        )
                    )
                )
            elif which == "ping":
                p.send(proto_rtc.SignalResponse(pong=request.ping))
            elif which == "leave":
                await room.remove(p, models.DisconnectReason.CLIENT_INITIATED)
                return False
        except TwirpError as err:
            log.info("%s: %s refused: %s", p.identity, which, err.msg)
        except Exception:
            log.exception("%s: handling %s failed", p.identity, which)
        return True

    async def _update_own_metadata(
        self, room: Room, p: RtcParticipant, update: proto_rtc.UpdateParticipantMetadata
    ) -> None:
        reason = proto_rtc.RequestResponse.Reason.OK
        if p.permission.can_update_metadata:
            await room.update_participant(
                p.identity,
                metadata=update.metadata or None,
                name=update.name or None,
                attributes=dict(update.attributes),
            )
        else:
            reason = proto_rtc.RequestResponse.Reason.NOT_ALLOWED
        if update.request_id:
            p.send(
                proto_rtc.SignalResponse(
                    request_response=proto_rtc.RequestResponse(
                        request_id=update.request_id, reason=reason
                    )
                )
            )


def _now_ms() -> int:
    return int(time.time() * 1000)
