"""Access tokens: verify a LiveKit JWT into Claims and check the grants a call needs."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import jwt
from google.protobuf import json_format
from livekit.api import SIPGrants, VideoGrants
from livekit.protocol import models
from livekit.protocol.room import RoomConfiguration

from devserver.twirperror import TwirpError

# LiveKit's verifier allows this much clock skew on exp/nbf.
LEEWAY_SECONDS = 60

_KIND_BY_CLAIM = {
    "": models.ParticipantInfo.Kind.STANDARD,
    "standard": models.ParticipantInfo.Kind.STANDARD,
    "ingress": models.ParticipantInfo.Kind.INGRESS,
    "egress": models.ParticipantInfo.Kind.EGRESS,
    "sip": models.ParticipantInfo.Kind.SIP,
    "agent": models.ParticipantInfo.Kind.AGENT,
}

G = TypeVar("G")

# LiveKit's message for every failed grant check; it answers them as `unauthenticated`.
PERMISSION_DENIED = "permissions denied"


@dataclass
class Claims:
    """The grants of one verified access token."""

    identity: str = ""
    name: str = ""
    kind: models.ParticipantInfo.Kind = models.ParticipantInfo.Kind.STANDARD
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    video: VideoGrants = field(default_factory=VideoGrants)
    sip: SIPGrants = field(default_factory=SIPGrants)
    room_config: RoomConfiguration | None = None
    api_key: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


def verify_token(token: str, keys: Mapping[str, str]) -> Claims:
    """Check the signature with the secret of the token's `iss` key, then exp and nbf."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as err:
        raise TwirpError("unauthenticated", "invalid authorization token") from err
    api_key = str(unverified.get("iss", ""))
    secret = keys.get(api_key)
    if secret is None:
        raise TwirpError("unauthenticated", "invalid API key", {"apiKey": api_key})
    try:
        raw: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp"]},
        )
    except jwt.PyJWTError as err:
        raise TwirpError("unauthenticated", f"invalid authorization token: {err}") from err
    return _claims_from(raw, api_key)


def _claims_from(raw: dict[str, Any], api_key: str) -> Claims:
    kind = _KIND_BY_CLAIM.get(
        str(raw.get("kind", "")).lower(), models.ParticipantInfo.Kind.STANDARD
    )
    room_config = None
    if isinstance(raw.get("roomConfig"), dict):
        room_config = json_format.ParseDict(
            raw["roomConfig"], RoomConfiguration(), ignore_unknown_fields=True
        )
    attributes = raw.get("attributes") or {}
    return Claims(
        identity=str(raw.get("sub", "")),
        name=str(raw.get("name", "")),
        kind=kind,
        metadata=str(raw.get("metadata", "")),
        attributes={str(k): str(v) for k, v in attributes.items()},
        video=_grants(VideoGrants, raw.get("video")),
        sip=_grants(SIPGrants, raw.get("sip")),
        room_config=room_config,
        api_key=api_key,
        raw=raw,
    )


def _grants(cls: type[G], value: object) -> G:
    if not isinstance(value, dict):
        return cls()
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {_snake(k): v for k, v in value.items() if _snake(k) in known}
    return cls(**values)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _deny() -> TwirpError:
    return TwirpError("unauthenticated", PERMISSION_DENIED)


def require_room_create(c: Claims) -> None:
    if not c.video.room_create:
        raise _deny()


def require_room_list(c: Claims) -> None:
    if not c.video.room_list:
        raise _deny()


def require_room_admin(c: Claims, room: str) -> None:
    if not c.video.room_admin or c.video.room != room:
        raise _deny()


def require_room_join(c: Claims, room: str) -> None:
    if not c.video.room_join or (c.video.room and c.video.room != room):
        raise _deny()


def require_agent(c: Claims) -> None:
    if not c.video.agent:
        raise _deny()


def require_sip_admin(c: Claims) -> None:
    if not c.sip.admin:
        raise _deny()


def require_sip_call(c: Claims) -> None:
    if not c.sip.call:
        raise _deny()
