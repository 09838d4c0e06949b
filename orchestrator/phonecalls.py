"""Phone fallback and cold transfer: the visitor's phone dialled into the conversation's room
with its agent, and the phone visitor sent elsewhere by SIP REFER, each outcome logged."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from livekit.protocol import sip

from conversation import CallEvent, CallOutcome, Channel, Conversation, attributes, calls
from conversation.phone import PhoneNumber, TransferTarget, outcome_of_sip_status
from orchestrator.errors import DispatchBusy, LiveKitRejected, LiveKitUnavailable
from orchestrator.livekit import SipAnswer
from orchestrator.services import Services
from orchestrator.timing import waited
from orchestrator.tokens import visitor_attributes

log = logging.getLogger("orchestrator.phone")

CONVERSATION_HEADER = "X-Baton-Conversation"
"""The SIP header that carries the conversation id to the carrier (or a PBX a call is
transferred to); it reaches the far SIP endpoint, never a handset."""
PHONE_PARTICIPANT_NAME = "Phone"
# Beyond the ring: the room, the agent's dispatch under its lock, and the answer's margin.
DIALLING_MARGIN = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class Dialled:
    outcome: CallOutcome
    number: PhoneNumber
    sip_status: int | None = None
    sip_reason: str | None = None
    participant_identity: str | None = None


async def dial_out(services: Services, record: Conversation, number: PhoneNumber,
                   trigger: str) -> Dialled:
    """Dial the visitor's phone into the conversation's room, with the agent dispatched first
    so it greets them once they answer. Counted against the dial-out limits; logged as `call`
    events from the moment LiveKit is reached, and switched into a phone call only once
    answered, so a call not taken leaves the conversation in chat."""
    settings, store = services.settings, services.store
    room = record.id
    hold = (timedelta(seconds=settings.dial_ringing_timeout) + services.dispatcher.lock_ttl
            + 2 * timedelta(seconds=settings.livekit_timeout) + DIALLING_MARGIN)
    async with services.dial_guard.dialling(record.id, hold):
        attempt = await services.dial_guard.count(record.id)
        try:
            await services.livekit.create_room(
                room, empty_timeout=settings.room_empty_timeout,
                departure_timeout=settings.room_departure_timeout)
            ensured = await services.dispatcher.ensure(room, record.id)
        except (LiveKitUnavailable, LiveKitRejected, DispatchBusy):
            # Nothing was dialled: the attempt does not count, and nothing is logged.
            await attempt.refund()
            raise
        if ensured.created:
            services.metrics.dispatches.labels("dial_out").inc()
        attempt_id = f"dial-{secrets.token_hex(6)}"
        await waited("redis", store.append(record.id, CallEvent(
            event_id=f"{attempt_id}-dialing", outcome=CallOutcome.DIALING,
            number_ending=number.ending)))
        identity = f"{attributes.PHONE_IDENTITY_PREFIX}{secrets.token_hex(8)}"
        try:
            answer = await services.livekit.dial(_dial_request(services, record, number,
                                                               identity))
        except (LiveKitUnavailable, LiveKitRejected):
            # The thread must not keep showing "dialling" for a call that cannot happen.
            await _log_outcome(services, record, attempt_id, number, CallOutcome.FAILED,
                               SipAnswer(False))
            raise
        if not answer.succeeded:
            outcome = outcome_of_sip_status(answer.sip_status)
            return await _log_outcome(services, record, attempt_id, number, outcome, answer)
        dialled = await _log_outcome(services, record, attempt_id, number,
                                     CallOutcome.ANSWERED, answer, identity=identity)
        await _switch_to_phone(services, record, trigger, answer)
        return dialled


def _dial_request(services: Services, record: Conversation, number: PhoneNumber,
                  identity: str) -> sip.CreateSIPParticipantRequest:
    settings = services.settings
    assert settings.sip_outbound_trunk is not None
    return sip.CreateSIPParticipantRequest(
        sip_trunk_id=settings.sip_outbound_trunk,
        sip_call_to=number.e164,
        room_name=record.id,
        # Chosen here, never from the number: identities reach logs and webhooks.
        participant_identity=identity,
        participant_name=PHONE_PARTICIPANT_NAME,
        # The phone is the visitor, with the identity the chat verified, as for the browser.
        participant_attributes=visitor_attributes(record),
        headers={CONVERSATION_HEADER: record.id},
        # Keeps the number out of the participant's attributes, which every client sees.
        hide_phone_number=True,
        wait_until_answered=True,
        ringing_timeout=Duration(seconds=settings.dial_ringing_timeout),
        max_call_duration=Duration(seconds=int(settings.dial_max_duration.total_seconds())),
    )


async def _switch_to_phone(services: Services, record: Conversation, trigger: str,
                           answer: SipAnswer) -> None:
    """Chat to phone, and the visitor in it: the worker records the same join from the room,
    but LiveKit sends no webhook when a phone answers, so without a worker only this would."""
    assert answer.participant is not None
    store = services.store
    step = calls.switch_into_call(record, Channel.PHONE, trigger, record.id)
    appended = await waited("redis", store.append(record.id, step.event,
                                                  transition=step.transition))
    if appended.written:
        services.metrics.switches.labels(trigger).inc()
    joined = calls.visitor_joined(Channel.PHONE, answer.participant.participant_identity,
                                  answer.participant.participant_id)
    await waited("redis", store.append(record.id, joined.event, transition=joined.transition))
    await waited("redis", services.waiting.add(record.id))


async def _log_outcome(services: Services, record: Conversation, attempt_id: str,
                       number: PhoneNumber, outcome: CallOutcome, answer: SipAnswer, *,
                       identity: str | None = None) -> Dialled:
    status, reason = _sip_fields(answer)
    await waited("redis", services.store.append(record.id, CallEvent(
        event_id=f"{attempt_id}-{outcome.value}", outcome=outcome, sip_status=status,
        sip_reason=reason, number_ending=number.ending)))
    services.metrics.dialouts.labels(outcome.value).inc()
    # The reason phrase is the carrier's free text: the log line keeps the status only.
    log.info("dial-out to %s: %s%s", number, outcome.value, _status_note(status),
             extra={"conversation_id": record.id})
    return Dialled(outcome, number, status, reason, identity)


@dataclass(frozen=True, slots=True)
class Transferred:
    outcome: CallOutcome
    sip_status: int | None = None
    sip_reason: str | None = None


async def transfer(services: Services, record: Conversation, visitor: str,
                   target: TransferTarget) -> Transferred:
    """Send the phone visitor to `target` by SIP REFER; the call leaves the room once the far
    end took it, and the conversation returns to chat as when any visitor hangs up."""
    answer = await services.livekit.transfer(sip.TransferSIPParticipantRequest(
        room_name=record.room or record.id, participant_identity=visitor,
        transfer_to=target.uri, headers={CONVERSATION_HEADER: record.id},
        ringing_timeout=Duration(seconds=services.settings.dial_ringing_timeout)))
    outcome = CallOutcome.TRANSFERRED if answer.succeeded else CallOutcome.TRANSFER_FAILED
    status, reason = _sip_fields(answer)
    await waited("redis", services.store.append(record.id, CallEvent(
        event_id=f"transfer-{secrets.token_hex(6)}-{outcome.value}", outcome=outcome,
        sip_status=status, sip_reason=reason,
        number_ending=target.number.ending if target.number is not None else None)))
    services.metrics.transfers.labels(outcome.value).inc()
    log.info("transfer to %s: %s%s", target, outcome.value, _status_note(status),
             extra={"conversation_id": record.id})
    return Transferred(outcome, status, reason)


def _sip_fields(answer: SipAnswer) -> tuple[int | None, str | None]:
    """The SIP status and reason as the log keeps them: a final status, a bounded phrase."""
    status = answer.sip_status if answer.sip_status and 100 <= answer.sip_status <= 699 \
        else None
    reason = answer.sip_reason[:128] if answer.sip_reason else None
    return status, reason


def _status_note(status: int | None) -> str:
    return f" (SIP {status})" if status else ""
