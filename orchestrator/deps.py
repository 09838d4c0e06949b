"""Request dependencies: the shared services, and authorization by API key or widget token."""

from __future__ import annotations

import hmac
from typing import Annotated, cast

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from conversation import ConversationStore
from orchestrator.errors import Forbidden, Unauthorized
from orchestrator.services import Services
from orchestrator.settings import Settings
from orchestrator.tokens import widget_conversation

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


async def require_conversation_reader(
    request: Request, settings: SettingsDep, credentials: Credentials,
    token: Annotated[str | None, Query(
        max_length=2048, description="A widget token, for EventSource, which cannot send headers",
    )] = None,
) -> None:
    """An API key in the header, or a widget token for the conversation in the path (header or
    `?token=`). The query takes widget tokens only: proxies and browsers log URLs, and a widget
    token is short-lived and opens one conversation's stream, an API key everything."""
    if credentials is not None:
        if is_api_key(settings, credentials.credentials):
            return
        presented = credentials.credentials
    elif token is not None:
        presented = token
    else:
        raise Unauthorized()
    granted = widget_conversation(settings, presented)
    if not hmac.compare_digest(granted.encode(),
                               str(request.path_params.get("conversation_id", "")).encode()):
        raise Forbidden("the widget token is for another conversation")


ApiKey = Depends(require_api_key)
ConversationReader = Depends(require_conversation_reader)
