"""Tokens the orchestrator signs: the visitor's LiveKit join token and the widget's stream token."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from livekit import api

from conversation import Conversation, attributes
from orchestrator.errors import Unauthorized
from orchestrator.settings import Settings

WIDGET_AUDIENCE = "baton-widget"
WIDGET_ISSUER = "baton-orchestrator"
# The only source a visitor may publish; camera and screen share stay closed.
VISITOR_SOURCES = ["microphone"]


@dataclass(frozen=True, slots=True)
class VisitorToken:
    identity: str
    jwt: str


def new_visitor_identity() -> str:
    # A second join with the same identity evicts the first, so every token gets its own.
    return f"{attributes.VISITOR_IDENTITY_PREFIX}{secrets.token_hex(8)}"


def visitor_attributes(conversation: Conversation) -> dict[str, str]:
    """What the worker trusts about the visitor; only this service holds the signing secret."""
    values = {attributes.CONVERSATION_ID: conversation.id,
              attributes.ROLE: attributes.ROLE_VISITOR}
    if conversation.identity is not None:
        values[attributes.SUBJECT] = conversation.identity.subject
        values[attributes.VERIFICATION_METHOD] = conversation.identity.method
        values[attributes.VERIFIED_AT] = conversation.identity.verified_at.isoformat()
    return values


def visitor_token(settings: Settings, conversation: Conversation, room: str) -> VisitorToken:
    identity = new_visitor_identity()
    grants = api.VideoGrants(
        room_join=True, room=room, can_publish=True, can_publish_sources=VISITOR_SOURCES,
        can_subscribe=True, can_publish_data=True, can_update_own_metadata=False)
    token = (api.AccessToken(settings.livekit_api_key,
                             settings.livekit_api_secret.get_secret_value())
             .with_identity(identity).with_kind("standard").with_grants(grants)
             .with_attributes(visitor_attributes(conversation))
             .with_ttl(settings.visitor_token_ttl).to_jwt())
    return VisitorToken(identity, token)


HUMAN_SOURCES = ["microphone"]


def human_token(settings: Settings, *, room: str, username: str, name: str,
                handoff_id: str) -> VisitorToken:
    """A human agent's join token for the room of the handoff they accepted. The worker knows
    them by these attributes. They join in consult, listening to the agent's briefing and
    unable to publish: the server, not the dashboard, keeps the visitor from hearing them
    until the agent grants them the microphone on connect."""
    identity = f"human-{username}-{secrets.token_hex(4)}"
    grants = api.VideoGrants(
        room_join=True, room=room, can_publish=False, can_publish_sources=HUMAN_SOURCES,
        can_subscribe=True, can_publish_data=True, can_update_own_metadata=False)
    token = (api.AccessToken(settings.livekit_api_key,
                             settings.livekit_api_secret.get_secret_value())
             .with_identity(identity).with_name(name).with_kind("standard").with_grants(grants)
             .with_attributes({attributes.ROLE: attributes.ROLE_HUMAN,
                               attributes.CONVERSATION_ID: room,
                               attributes.HANDOFF_ID: handoff_id})
             .with_ttl(settings.visitor_token_ttl).to_jwt())
    return VisitorToken(identity, token)


@dataclass(frozen=True, slots=True)
class WidgetToken:
    token: str
    expires_at: datetime


def widget_token(settings: Settings, conversation_id: str) -> WidgetToken:
    now = datetime.now(UTC)
    expires = now + settings.widget_token_ttl
    claims = {"sub": conversation_id, "aud": WIDGET_AUDIENCE, "iss": WIDGET_ISSUER,
              "iat": int(now.timestamp()), "exp": int(expires.timestamp())}
    token = jwt.encode(claims, settings.widget_secret.get_secret_value(), algorithm="HS256")
    return WidgetToken(token, datetime.fromtimestamp(int(expires.timestamp()), UTC))


@dataclass(frozen=True, slots=True)
class WidgetGrant:
    """What a valid widget token opens: one conversation's stream, until it expires."""

    conversation_id: str
    expires_at: datetime


def widget_grant(settings: Settings, token: str) -> WidgetGrant:
    """The conversation a valid widget token grants, and until when; Unauthorized for anything
    else."""
    try:
        claims = jwt.decode(token, settings.widget_secret.get_secret_value(),
                            algorithms=["HS256"], audience=WIDGET_AUDIENCE, issuer=WIDGET_ISSUER,
                            options={"require": ["exp", "sub", "aud", "iss"]})
    except jwt.PyJWTError:
        raise Unauthorized("invalid or expired widget token") from None
    subject = claims.get("sub")
    if not isinstance(subject, str):
        raise Unauthorized("invalid widget token")
    return WidgetGrant(subject, datetime.fromtimestamp(claims["exp"], UTC))
