"""The demo page's stand-in for a site's backend, in development only: it creates the
visitor's conversation (remembered in a cookie, so a reload shows the same thread) and mints
the widget token, as a site's backend does with its API key. Never served in production."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, ConfigDict

from conversation import ConversationNotFound, InvalidInput, validate_conversation_id
from conversation.ids import new_conversation_id
from conversation.record import Conversation, VerifiedIdentity
from orchestrator.deps import SettingsDep, StoreDep
from orchestrator.errors import responses
from orchestrator.tokens import widget_token

router = APIRouter(prefix="/demo", tags=["demo"], include_in_schema=False)

COOKIE = "baton_demo_conversation"
DEMO_CUSTOMER = "demo-customer-1"
"""The example backend's customer with orders A1234 and A1235, so the demo can look them up."""


class NewSession(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    new: bool = False
    """Start another conversation instead of continuing the remembered one."""


class DemoSession(BaseModel):
    conversation_id: str
    token: str
    expires_at: datetime
    offline_models: bool
    """The stack answers with the scripted models (no OPENAI_API_KEY)."""


async def _remembered(request: Request, store: StoreDep) -> Conversation | None:
    try:
        return await store.get(validate_conversation_id(request.cookies.get(COOKIE, "")))
    except (InvalidInput, ConversationNotFound):
        return None


@router.post("/session", responses=responses(413, 422, 503))
async def demo_session(request: Request, response: Response, store: StoreDep,
                       settings: SettingsDep,
                       body: Annotated[NewSession | None, Body()] = None) -> DemoSession:
    record = None if body is not None and body.new else await _remembered(request, store)
    if record is None:
        record = await store.create(new_conversation_id(), identity=VerifiedIdentity(
            subject=DEMO_CUSTOMER, method="demo", verified_at=datetime.now(UTC)))
    response.set_cookie(COOKIE, record.id, path="/demo", httponly=True, samesite="strict")
    issued = widget_token(settings, record.id)
    return DemoSession(conversation_id=record.id, token=issued.token,
                       expires_at=issued.expires_at, offline_models=settings.demo_offline)
