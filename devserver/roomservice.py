"""RoomService Twirp methods with LiveKit's grant checks and error codes."""

from __future__ import annotations

import logging
from typing import cast

from livekit.protocol import models
from livekit.protocol import room as proto_room

from devserver.auth import Claims, require_room_admin, require_room_create, require_room_list
from devserver.context import ServerContext
from devserver.participant import Participant
from devserver.rooms import Room
from devserver.twirp import Handler, TwirpError

log = logging.getLogger("devserver.roomservice")

NO_ROOM = "requested room does not exist"
NO_PARTICIPANT = "participant does not exist"


class RoomService:
    """livekit.RoomService over the room manager."""

    def __init__(self, ctx: ServerContext) -> None:
        self.rooms = ctx.rooms

    def _room(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None:
            raise TwirpError("not_found", NO_ROOM)
        return room

    async def CreateRoom(self, req: proto_room.CreateRoomRequest, c: Claims) -> models.Room:
        require_room_create(c)
        if not req.name:
            raise TwirpError("invalid_argument", "no room name")
        room, _ = await self.rooms.create_room(
            req.name,
            empty_timeout=req.empty_timeout,
            departure_timeout=req.departure_timeout,
            metadata=req.metadata,
            max_participants=req.max_participants,
            agents=list(req.agents),
        )
        return room.to_proto()

    async def ListRooms(
        self, req: proto_room.ListRoomsRequest, c: Claims
    ) -> proto_room.ListRoomsResponse:
        require_room_list(c)
        names = set(req.names)
        return proto_room.ListRoomsResponse(
            rooms=[r.to_proto() for r in self.rooms.list() if not names or r.name in names]
        )

    async def DeleteRoom(
        self, req: proto_room.DeleteRoomRequest, c: Claims
    ) -> proto_room.DeleteRoomResponse:
        require_room_create(c)
        await self.rooms.delete_room(req.room)
        return proto_room.DeleteRoomResponse()

    async def ListParticipants(
        self,
        req: proto_room.ListParticipantsRequest,
        c: Claims,
    ) -> proto_room.ListParticipantsResponse:
        require_room_admin(c, req.room)
        room = self.rooms.get(req.room)
        people = room.participants() if room else []
        return proto_room.ListParticipantsResponse(participants=[p.to_proto() for p in people])

    async def GetParticipant(
        self, req: proto_room.RoomParticipantIdentity, c: Claims
    ) -> models.ParticipantInfo:
        require_room_admin(c, req.room)
        return self._participant(req.room, req.identity).to_proto()

    async def RemoveParticipant(
        self,
        req: proto_room.RoomParticipantIdentity,
        c: Claims,
    ) -> proto_room.RemoveParticipantResponse:
        require_room_admin(c, req.room)
        self._participant(req.room, req.identity)
        await self._room(req.room).remove_participant(req.identity)
        return proto_room.RemoveParticipantResponse()

    async def MutePublishedTrack(
        self,
        req: proto_room.MuteRoomTrackRequest,
        c: Claims,
    ) -> proto_room.MuteRoomTrackResponse:
        require_room_admin(c, req.room)
        participant = self._participant(req.room, req.identity)
        track = participant.tracks.get(req.track_sid)
        if track is None:
            raise TwirpError("not_found", "track is not found")
        self._room(req.room).set_track_muted(participant, req.track_sid, req.muted)
        return proto_room.MuteRoomTrackResponse(track=track.info)

    async def UpdateParticipant(
        self,
        req: proto_room.UpdateParticipantRequest,
        c: Claims,
    ) -> models.ParticipantInfo:
        require_room_admin(c, req.room)
        self._participant(req.room, req.identity)
        participant = await self._room(req.room).update_participant(
            req.identity,
            metadata=req.metadata or None,
            name=req.name or None,
            attributes=dict(req.attributes),
            permission=req.permission if req.HasField("permission") else None,
        )
        return participant.to_proto()

    async def UpdateSubscriptions(
        self,
        req: proto_room.UpdateSubscriptionsRequest,
        c: Claims,
    ) -> proto_room.UpdateSubscriptionsResponse:
        require_room_admin(c, req.room)
        self._participant(req.room, req.identity)
        sids = list(req.track_sids) + [s for pt in req.participant_tracks for s in pt.track_sids]
        await self._room(req.room).update_subscriptions(req.identity, sids, req.subscribe)
        return proto_room.UpdateSubscriptionsResponse()

    async def SendData(
        self, req: proto_room.SendDataRequest, c: Claims
    ) -> proto_room.SendDataResponse:
        require_room_admin(c, req.room)
        if req.nonce and len(req.nonce) != 16:
            raise TwirpError(
                "invalid_argument",
                f"nonce should be 16-bytes or not present, got: {len(req.nonce)} bytes",
            )
        room = self._room(req.room)
        packet = models.DataPacket(
            kind=req.kind,
            user=models.UserPacket(
                payload=req.data,
                topic=req.topic,
                nonce=req.nonce,
                destination_identities=list(req.destination_identities),
            ),
        )
        await room.send_data(packet, req.destination_identities)
        return proto_room.SendDataResponse()

    async def UpdateRoomMetadata(
        self, req: proto_room.UpdateRoomMetadataRequest, c: Claims
    ) -> models.Room:
        require_room_admin(c, req.room)
        return self._room(req.room).update_metadata(req.metadata)

    def _participant(self, room_name: str, identity: str) -> Participant:
        room = self.rooms.get(room_name)
        participant = room.get_participant(identity) if room else None
        if participant is None:
            raise TwirpError("not_found", NO_PARTICIPANT)
        return participant

    def handlers(self) -> dict[str, Handler]:
        names = (
            "CreateRoom",
            "ListRooms",
            "DeleteRoom",
            "ListParticipants",
            "GetParticipant",
            "RemoveParticipant",
            "MutePublishedTrack",
            "UpdateParticipant",
            "UpdateSubscriptions",
            "SendData",
            "UpdateRoomMetadata",
        )
        return {name: cast(Handler, getattr(self, name)) for name in names}
