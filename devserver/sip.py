"""The SIP Twirp service, simulated: outbound trunks, dial-out, REFER, and the script endpoint."""

from __future__ import annotations

import json
import logging
import secrets
from collections import deque
from dataclasses import dataclass
from typing import Any, cast

import yaml
from aiohttp import web
from google.protobuf.timestamp_pb2 import Timestamp
from livekit.protocol import models, sip

from devserver.auth import Claims, require_room_admin, require_sip_admin, require_sip_call
from devserver.context import ServerContext
from devserver.dispatch import typed
from devserver.ids import new_id
from devserver.sipscript import ScriptError, SipScript, load_script, parse_script
from devserver.sipsim import SimulatedCall, redact, sip_error
from devserver.twirp import TwirpError

log = logging.getLogger("devserver.sip")

SERVICE = "livekit.SIP"
SCRIPT_PATH = "/devserver/sip/script"
CALLS_PATH = "/devserver/sip/calls"
# Calls the dev-only listing remembers, newest last.
CALL_HISTORY = 200
# The SIP bridge's ring window when a request sets none (livekit/sip defaultRingingTimeout).
DEFAULT_RINGING_TIMEOUT = 180.0

ATTR_CALL_ID = "sip.callID"
ATTR_TRUNK_ID = "sip.trunkID"
ATTR_PHONE_NUMBER = "sip.phoneNumber"
ATTR_HOSTNAME = "sip.hostname"
ATTR_TRUNK_NUMBER = "sip.trunkPhoneNumber"
ATTR_CALL_STATUS = "sip.callStatus"


def install(app: web.Application, ctx: ServerContext) -> None:
    script = load_script(ctx.config.sip_script) if ctx.config.sip_script else SipScript()
    service = SipService(ctx, script)
    ctx.router.add_service(
        SERVICE,
        {
            "CreateSIPOutboundTrunk": typed(
                sip.CreateSIPOutboundTrunkRequest, service.create_trunk
            ),
            "ListSIPOutboundTrunk": typed(sip.ListSIPOutboundTrunkRequest, service.list_trunks),
            "ListSIPTrunk": typed(sip.ListSIPTrunkRequest, service.list_legacy_trunks),
            "DeleteSIPTrunk": typed(sip.DeleteSIPTrunkRequest, service.delete_trunk),
            "CreateSIPParticipant": typed(
                sip.CreateSIPParticipantRequest, service.create_participant
            ),
            "TransferSIPParticipant": typed(sip.TransferSIPParticipantRequest, service.transfer),
        },
    )
    app.router.add_route("GET", SCRIPT_PATH, service.get_script)
    app.router.add_route("POST", SCRIPT_PATH, service.set_script)
    app.router.add_route("GET", CALLS_PATH, service.list_calls)
    app.on_shutdown.append(service.close)


@dataclass(frozen=True)
class PlacedCall:
    """A call as the SIP bridge received its request, for the dev-only listing: what the far
    end's carrier would see (number, headers) and where the call went."""

    call: SimulatedCall
    room: str
    to: str
    trunk_id: str
    headers: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        participant = self.call.participant
        return {
            "call_id": self.call.call_id,
            "room": self.room,
            "participant_identity": participant.identity,
            "to": self.to,
            "trunk_id": self.trunk_id,
            "headers": self.headers,
            "status": participant.attributes.get(ATTR_CALL_STATUS, ""),
            "ended": participant.left.is_set(),
        }


class SipService:
    """Outbound trunks in memory and the calls placed through them."""

    def __init__(self, ctx: ServerContext, script: SipScript) -> None:
        self._ctx = ctx
        self.script = script
        self._trunks: dict[str, sip.SIPOutboundTrunkInfo] = {}
        self._calls: dict[str, SimulatedCall] = {}
        self._placed: deque[PlacedCall] = deque(maxlen=CALL_HISTORY)

    # Trunks

    async def create_trunk(
        self, req: sip.CreateSIPOutboundTrunkRequest, claims: Claims
    ) -> sip.SIPOutboundTrunkInfo:
        require_sip_admin(claims)
        if not req.HasField("trunk"):
            raise TwirpError("invalid_argument", "missing trunk")
        trunk = sip.SIPOutboundTrunkInfo()
        trunk.CopyFrom(req.trunk)
        if trunk.sip_trunk_id:
            raise TwirpError("invalid_argument", "trunk id must not be set")
        if not trunk.numbers:
            raise TwirpError("invalid_argument", "no trunk numbers specified")
        if not trunk.address:
            raise TwirpError("invalid_argument", "no outbound address specified")
        trunk.sip_trunk_id = new_id("ST_")
        now = Timestamp()
        now.GetCurrentTime()
        trunk.created_at.CopyFrom(now)
        trunk.updated_at.CopyFrom(now)
        self._trunks[trunk.sip_trunk_id] = trunk
        log.info("outbound trunk %s created", trunk.sip_trunk_id)
        return trunk

    async def list_trunks(
        self, req: sip.ListSIPOutboundTrunkRequest, claims: Claims
    ) -> sip.ListSIPOutboundTrunkResponse:
        require_sip_admin(claims)
        items = [
            t
            for t in self._trunks.values()
            if (not req.trunk_ids or t.sip_trunk_id in req.trunk_ids)
            and (not req.numbers or set(req.numbers) & set(t.numbers))
        ]
        return sip.ListSIPOutboundTrunkResponse(items=items)

    async def list_legacy_trunks(
        self, req: sip.ListSIPTrunkRequest, claims: Claims
    ) -> sip.ListSIPTrunkResponse:
        require_sip_admin(claims)
        # LiveKit lists only legacy (pre-split) trunks here, which the devserver never has.
        return sip.ListSIPTrunkResponse()

    async def delete_trunk(
        self, req: sip.DeleteSIPTrunkRequest, claims: Claims
    ) -> sip.SIPTrunkInfo:
        require_sip_admin(claims)
        if not req.sip_trunk_id:
            raise TwirpError("invalid_argument", "trunk ID is required")
        # Deleting an unknown trunk succeeds in LiveKit too.
        if self._trunks.pop(req.sip_trunk_id, None) is not None:
            log.info("outbound trunk %s deleted", req.sip_trunk_id)
        return sip.SIPTrunkInfo(sip_trunk_id=req.sip_trunk_id)

    # Calls

    async def create_participant(
        self, req: sip.CreateSIPParticipantRequest, claims: Claims
    ) -> sip.SIPParticipantInfo:
        require_sip_call(claims)
        _validate(req)
        trunk = self._trunk_for(req)
        trunk_number = req.sip_number or (secrets.choice(list(trunk.numbers)) if trunk else "")
        if not trunk_number:
            raise TwirpError("failed_precondition", "no numbers on outbound trunk")
        call_id = new_id("SCL_")
        attributes = dict(req.participant_attributes)
        attributes[ATTR_CALL_ID] = call_id
        attributes[ATTR_TRUNK_ID] = req.sip_trunk_id
        if not req.hide_phone_number:
            attributes[ATTR_PHONE_NUMBER] = req.sip_call_to
            attributes[ATTR_HOSTNAME] = trunk.address if trunk else req.trunk.hostname
            attributes[ATTR_TRUNK_NUMBER] = trunk_number
        attributes[ATTR_CALL_STATUS] = "dialing"
        room, _ = await self._ctx.rooms.create_room(req.room_name)
        participant = await room.add_server_participant(
            req.participant_identity or f"sip_{req.sip_call_to}",
            name=req.participant_name,
            kind=models.ParticipantInfo.Kind.SIP,
            attributes=attributes,
            metadata=req.participant_metadata,
        )
        behaviour = self.script.call(req.sip_call_to)
        ringing = (
            req.ringing_timeout.ToTimedelta().total_seconds()
            if req.HasField("ringing_timeout")
            else DEFAULT_RINGING_TIMEOUT
        )
        max_duration = (
            req.max_call_duration.ToTimedelta().total_seconds()
            if req.HasField("max_call_duration")
            else None
        )
        call = SimulatedCall(
            call_id,
            participant,
            behaviour,
            ringing_timeout=ringing or DEFAULT_RINGING_TIMEOUT,
            max_duration=max_duration or None,
            dtmf=req.dtmf,
        )
        self._calls = {k: c for k, c in self._calls.items() if not c.participant.left.is_set()}
        self._calls[call_id] = call
        self._placed.append(
            PlacedCall(call, room.name, req.sip_call_to, req.sip_trunk_id, dict(req.headers))
        )
        log.info("call %s to %s dialling in room %s", call_id, redact(req.sip_call_to), room.name)
        call.start()
        if req.wait_until_answered:
            await call.answered
        return sip.SIPParticipantInfo(
            participant_id=participant.sid,
            participant_identity=participant.identity,
            room_name=room.name,
            sip_call_id=call_id,
        )

    async def transfer(
        self, req: sip.TransferSIPParticipantRequest, claims: Claims
    ) -> sip.TransferSIPParticipantResponse:
        if not req.room_name:
            raise TwirpError("invalid_argument", "Missing room name")
        if not req.participant_identity:
            raise TwirpError("invalid_argument", "Missing participant identity")
        require_sip_call(claims)
        require_room_admin(claims, req.room_name)
        room = self._ctx.rooms.get(req.room_name)
        if room is None:
            raise TwirpError("not_found", "requested room does not exist")
        participant = room.get_participant(req.participant_identity)
        if participant is None:
            raise TwirpError("not_found", "participant does not exist")
        call_id = participant.attributes.get(ATTR_CALL_ID)
        if call_id is None:
            raise TwirpError("invalid_argument", "no SIP session associated with participant")
        call = self._calls.get(call_id)
        if call is None or call.participant.left.is_set():
            raise TwirpError("not_found", "unknown call")
        outcome = self.script.transfer(req.transfer_to)
        transfer_id = new_id("STR_")
        if await call.transfer(outcome):
            if outcome.empty_response:
                return sip.TransferSIPParticipantResponse()
            return sip.TransferSIPParticipantResponse(
                transfer_id=transfer_id,
                status=sip.SIPTransferStatus.STS_TRANSFER_SUCCESSFUL,
                reason=sip.SIPTransferReason.STR_COMPLETED,
                sip_status=_status(outcome.status, outcome.reason_phrase),
            )
        if outcome.as_response:
            return sip.TransferSIPParticipantResponse(
                transfer_id=transfer_id,
                status=sip.SIPTransferStatus.STS_TRANSFER_FAILED,
                reason=sip.SIPTransferReason.STR_REJECTED,
                sip_status=_status(outcome.status, outcome.reason_phrase),
            )
        raise sip_error("transfer failed", outcome.status, outcome.reason_phrase)

    def _trunk_for(self, req: sip.CreateSIPParticipantRequest) -> sip.SIPOutboundTrunkInfo | None:
        if not req.sip_trunk_id:
            return None
        trunk = self._trunks.get(req.sip_trunk_id)
        if trunk is None:
            raise TwirpError("not_found", "requested sip trunk does not exist")
        return trunk

    # The dev-only script endpoint

    async def get_script(self, request: web.Request) -> web.Response:
        self._require_admin(request)
        return web.json_response(self.script.to_dict())

    async def set_script(self, request: web.Request) -> web.Response:
        """Replace the script: JSON, or YAML when the Content-Type says so."""
        self._require_admin(request)
        text = await request.text()
        try:
            data: Any = yaml.safe_load(text) if "yaml" in request.content_type else json.loads(text)
            self.script = parse_script(data or {})
        except (ValueError, TypeError, yaml.YAMLError) as err:
            # ScriptError is a ValueError; TypeError comes from a value of the wrong type.
            reason = str(err) if isinstance(err, ScriptError) else f"invalid SIP script: {err}"
            return web.json_response({"error": reason}, status=400)
        log.info(
            "SIP script replaced: %d number rules, %d transfer rules",
            len(self.script.numbers),
            len(self.script.transfers),
        )
        return web.json_response(self.script.to_dict())

    async def list_calls(self, request: web.Request) -> web.Response:
        """The calls placed lately, oldest first, with the headers their requests carried."""
        self._require_admin(request)
        return web.json_response({"calls": [placed.to_dict() for placed in self._placed]})

    def _require_admin(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        try:
            require_sip_admin(self._ctx.verify(header.removeprefix("Bearer ")))
        except TwirpError as err:
            raise web.HTTPUnauthorized(text=err.msg) from err

    async def close(self, app: web.Application) -> None:
        for call in list(self._calls.values()):
            await call.close()
        self._calls.clear()


def _validate(req: sip.CreateSIPParticipantRequest) -> None:
    """The checks LiveKit's CreateSIPParticipantRequest.Validate makes that matter here."""
    if not req.sip_trunk_id and not req.HasField("trunk") and not req.sip_number:
        raise TwirpError("invalid_argument", "missing sip trunk id and sip number")
    if not req.sip_call_to:
        raise TwirpError("invalid_argument", "missing sip callee number")
    if "@" in req.sip_call_to:
        raise TwirpError(
            "invalid_argument", "SipCallTo should be a phone number or SIP user, not a full SIP URI"
        )
    if not req.room_name:
        raise TwirpError("invalid_argument", "missing room name")


def _status(code: int, reason: str) -> sip.SIPStatus:
    return sip.SIPStatus(code=cast("sip.SIPStatusCode", code), status=reason)
