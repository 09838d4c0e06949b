"""Webhooks of phone participants: a dialled phone is in the call only once it answered."""

from __future__ import annotations

import httpx
from livekit.protocol import models, webhook

from conversation import attributes
from orchestrator.settings import Settings
from tests.orchestrator.support import AUTH, VISITOR, create_conversation, events, signed_webhook

WEBHOOK = "/v1/livekit/webhook"


def _phone_event(name: str, room: str, call_status: str, *, sid: str = "PA_phone",
                 event_id: str) -> webhook.WebhookEvent:
    return webhook.WebhookEvent(
        event=name, id=event_id, room=models.Room(name=room, sid="RM_test"),
        participant=models.ParticipantInfo(
            sid=sid, identity="phone-1", kind=models.ParticipantInfo.Kind.SIP,
            attributes={**VISITOR, attributes.SIP_CALL_STATUS: call_status}))


async def _send(client: httpx.AsyncClient, settings: Settings,
                event: webhook.WebhookEvent) -> str:
    body, headers = signed_webhook(event, settings)
    response = await client.post(WEBHOOK, content=body, headers=headers)
    assert response.status_code == 200, response.text
    outcome: str = response.json()["outcome"]
    return outcome


async def test_a_ringing_phone_joining_and_leaving_unanswered_writes_nothing(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings) -> None:
    """A dialled phone joins the room as it starts ringing and leaves when nobody answers;
    the call never started, so the thread shows only the dial-out's outcome."""
    conversation_id = await create_conversation(orchestrator_client)

    outcomes = [await _send(orchestrator_client, orchestrator_settings,
                            _phone_event(name, conversation_id, status, event_id=f"EV_{name}"))
                for name, status in (("participant_joined", "dialing"),
                                     ("participant_left", "ringing"))]
    record = (await orchestrator_client.get(f"/v1/conversations/{conversation_id}",
                                            headers=AUTH)).json()

    assert outcomes == ["ignored", "ignored"]
    assert await events(orchestrator_client, conversation_id) == []
    assert record["status"] == "chat"


async def test_an_answered_phone_hanging_up_ends_the_phone_call(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    outcomes = [await _send(orchestrator_client, orchestrator_settings,
                            _phone_event(name, conversation_id, status, event_id=f"EV_{name}"))
                for name, status in (("participant_joined", "active"),
                                     ("participant_left", "hangup"))]
    log = await events(orchestrator_client, conversation_id)

    assert outcomes == ["recorded", "recorded"]
    assert [(e["from_channel"], e["to_channel"], e["trigger"]) for e in log] == [
        (None, "phone", "visitor_joined"), ("phone", "chat", "visitor_left")]
