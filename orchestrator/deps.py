"""Request dependencies: the shared services, and authorization by API key or widget token."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, cast

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from conversation import ConversationStore
from orchestrator.errors import Forbidden, Unauthorized
from orchestrator.humans import HumanAccount
from orchestrator.services import Services
from orchestrator.settings import Settings
from orchestrator.tokens import WidgetGrant, widget_grant

bearer = HTTPBearer(auto_error=False, description="An API key, or a widget token where noted")


# Dependencies are coroutines on purpose: FastAPI runs plain functions in a thread pool, a
# hop per dependency that costs more than the work they do.


async def get_services(request: Request) -> Services:
    return cast(Services, request.app.state.services)


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_store(services: ServicesDep) -> ConversationStore:
    return services.store


async def get_settings(services: ServicesDep) -> Settings:
    return services.settings


StoreDep = Annotated[ConversationStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def is_api_key(settings: Settings, presented: str) -> bool:
    # Compare against every key without stopping early, so timing says nothing about which
    # key, or how much of one, matched.
    candidate = presented.encode()
    matched = False
    for key in settings.api_keys:
        matched |= hmac.compare_digest(candidate, key.get_secret_value().encode())
    return matched


async def require_api_key(settings: SettingsDep, credentials: Credentials) -> None:
    """Server-to-server calls: `Authorization: Bearer <API key>`."""
    if credentials is None or not is_api_key(settings, credentials.credentials):
        raise Unauthorized()


@dataclass(frozen=True, slots=True)
class Reader:
    """Who reads a conversation's stream: whose streams it counts against, how many those may
    be, and when its access ends (a widget token's expiry; never for an API key)."""

    holder: str
    bound: int
    expires_at: datetime | None


def _holder(kind: str, credential: str) -> str:
    # A digest, so the counts kept for the bounds hold no credential.
    return f"{kind}:{hashlib.sha256(credential.encode()).hexdigest()}"


def _widget_grant_for_path(request: Request, settings: Settings, presented: str) -> WidgetGrant:
    """The grant of a widget token, which must be for the conversation in the path."""
    grant = widget_grant(settings, presented)
    if not hmac.compare_digest(grant.conversation_id.encode(),
                               str(request.path_params.get("conversation_id", "")).encode()):
        raise Forbidden("the widget token is for another conversation")
    return grant


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls a route that the site's backend and the visitor's widget share."""

    widget: bool
    """True for the widget (a widget token for this conversation), which may act only as the
    visitor; False for an API key."""


async def require_conversation_caller(request: Request, settings: SettingsDep,
                                      credentials: Credentials) -> Caller:
    """`Authorization: Bearer` with an API key, or a widget token for the conversation in the
    path. Header only: these routes are called with fetch, which can send one."""
    if credentials is None:
        raise Unauthorized()
    if is_api_key(settings, credentials.credentials):
        return Caller(widget=False)
    _widget_grant_for_path(request, settings, credentials.credentials)
    return Caller(widget=True)


async def require_conversation_reader(
    request: Request, settings: SettingsDep, credentials: Credentials,
    token: Annotated[str | None, Query(
        max_length=2048, description="A widget token, for EventSource, which cannot send headers",
    )] = None,
) -> Reader:
    """An API key in the header, or a widget token for the conversation in the path (header or
    `?token=`). The query takes widget tokens only: proxies and browsers log URLs, and a widget
    token is short-lived and opens one conversation's stream, an API key everything."""
    if credentials is not None:
        if is_api_key(settings, credentials.credentials):
            return Reader(_holder("key", credentials.credentials),
                          settings.sse_streams_per_api_key, None)
        presented = credentials.credentials
    elif token is not None:
        presented = token
    else:
        raise Unauthorized()
    grant = _widget_grant_for_path(request, settings, presented)
    return Reader(_holder("widget", presented), settings.sse_streams_per_token, grant.expires_at)


HUMAN_COOKIE = "baton_human"


async def require_human(request: Request, services: ServicesDep,
                        credentials: Credentials) -> HumanAccount:
    """A signed-in human agent: the dashboard's session cookie, or its token as a Bearer.
    Neither an API key nor a widget token is a human."""
    token = request.cookies.get(HUMAN_COOKIE) or (
        credentials.credentials if credentials is not None else None)
    if not token:
        raise Unauthorized("sign in as a human agent")
    account = await services.humans.session(token)
    if account is None:
        raise Unauthorized("the session is invalid or has expired; sign in again")
    return account


ApiKey = Depends(require_api_key)
ReaderDep = Annotated[Reader, Depends(require_conversation_reader)]
HumanDep = Annotated[HumanAccount, Depends(require_human)]
CallerDep = Annotated[Caller, Depends(require_conversation_caller)]
VisitorOrApiKey = Depends(require_conversation_caller)
"""For routes that need no more than to know the caller may act for the conversation."""
