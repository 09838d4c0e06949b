"""Phone calls: dialling the visitor's phone into the conversation, and cold transfers."""

from __future__ import annotations

from fastapi import APIRouter

from conversation import Status
from conversation.phone import dialable, transfer_target
from orchestrator import phonecalls
from orchestrator.deps import ApiKey, ServicesDep, VisitorOrApiKey
from orchestrator.errors import (
    CallInProgress,
    ConversationClosed,
    DialOutDisabled,
    LiveKitRejected,
    NoPhoneVisitor,
    responses,
)
from orchestrator.routers.conversations import ConversationId
from orchestrator.schemas import DialOut, DialOutResult, TransferCall, TransferResult
from orchestrator.timing import waited

router = APIRouter(prefix="/v1/conversations", tags=["phone"])


@router.post("/{conversation_id}/dial-out", dependencies=[VisitorOrApiKey],
             responses=responses(401, 403, 404, 409, 413, 422, 429, 502, 503))
async def dial_out(conversation_id: ConversationId, body: DialOut,
                   services: ServicesDep) -> DialOutResult:
    """Call the visitor's phone ("call me instead"): an API key, or the conversation's widget
    token. Answers once the call is answered or has failed (up to the ringing timeout); the
    outcome is also in the log as `call` events. Answered, the conversation is in a phone call
    with its agent; otherwise it stays in chat."""
    settings = services.settings
    if settings.sip_outbound_trunk is None:
        raise DialOutDisabled("dial-out is off: BATON_SIP_OUTBOUND_TRUNK names no outbound "
                              "trunk")
    if not settings.dial_countries:
        raise DialOutDisabled("dial-out is off: BATON_DIAL_COUNTRIES allows no country")
    record = await waited("redis", services.store.get(conversation_id))
    if record.status is Status.CLOSED:
        raise ConversationClosed(conversation_id)
    if record.status is not Status.CHAT:
        raise CallInProgress(f"conversation {conversation_id!r} is in a call already "
                             f"({record.status.value})")
    number = dialable(body.phone_number, settings.dial_countries)
    dialled = await phonecalls.dial_out(services, record, number, body.trigger)
    return DialOutResult.model_validate({
        "outcome": dialled.outcome, "sip_status": dialled.sip_status,
        "sip_reason": dialled.sip_reason, "number_ending": dialled.number.ending,
        "participant_identity": dialled.participant_identity})


@router.post("/{conversation_id}/transfer", dependencies=[ApiKey],
             responses=responses(401, 404, 409, 413, 422, 502, 503))
async def transfer(conversation_id: ConversationId, body: TransferCall,
                   services: ServicesDep) -> TransferResult:
    """Cold transfer of the conversation's phone visitor (SIP REFER) to a number or SIP URI;
    API key only. A transfer the far end refused is a `transfer_failed` outcome, also logged."""
    record = await waited("redis", services.store.get(conversation_id))
    if record.status is not Status.PHONE or record.visitor is None:
        raise NoPhoneVisitor(conversation_id)
    target = transfer_target(body.to, services.settings.dial_countries)
    try:
        transferred = await phonecalls.transfer(services, record, record.visitor, target)
    except LiveKitRejected as exc:
        if exc.code == "not_found":
            # The record still names a visitor whose call has just ended.
            raise NoPhoneVisitor(conversation_id) from exc
        raise
    return TransferResult.model_validate({
        "outcome": transferred.outcome, "sip_status": transferred.sip_status,
        "sip_reason": transferred.sip_reason})
