"""Health probes and the Prometheus metrics the orchestrator exports."""

from __future__ import annotations

import httpx
from livekit.protocol import models, webhook

from orchestrator.settings import Settings
from tests.orchestrator.support import AUTH, create_conversation, metric_sample, signed_webhook


async def test_healthz_says_the_process_is_up(orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.get("/healthz")

    assert response.json() == {"status": "ok"}


async def test_switches_are_counted_by_trigger_and_timed(
        orchestrator_client: httpx.AsyncClient) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    await orchestrator_client.post(f"/v1/conversations/{conversation_id}/voice",
                                   json={"trigger": "agent"}, headers=AUTH)

    text = (await orchestrator_client.get("/metrics")).text

    assert metric_sample(text, 'baton_switches_total{trigger="agent"}') == 1
    assert metric_sample(text, "baton_switch_seconds_count") == 1


async def test_errors_are_counted_by_type(orchestrator_client: httpx.AsyncClient) -> None:
    await orchestrator_client.get("/v1/conversations/nobody-here", headers=AUTH)
    await orchestrator_client.get("/v1/conversations/nobody-here")

    text = (await orchestrator_client.get("/metrics")).text

    assert metric_sample(text, 'baton_errors_total{type="ConversationNotFound"}') == 1
    assert metric_sample(text, 'baton_errors_total{type="Unauthorized"}') == 1


async def test_the_counters_alerts_watch_are_exported_at_zero_before_anything_happens(
        orchestrator_client: httpx.AsyncClient) -> None:
    text = (await orchestrator_client.get("/metrics")).text

    assert metric_sample(text, 'baton_dispatches_total{reason="lost"}') == 0
    for kind in ("LiveKitUnavailable", "LiveKitRejected", "DispatchBusy"):
        assert metric_sample(text, f'baton_errors_total{{type="{kind}"}}') == 0
    assert metric_sample(text, "baton_agent_unavailable_total") == 0


async def test_webhooks_are_counted_by_event(orchestrator_client: httpx.AsyncClient,
                                             orchestrator_settings: Settings) -> None:
    event = webhook.WebhookEvent(event="room_started", id="EV_counted",
                                 room=models.Room(name="some-room"))
    body, headers = signed_webhook(event, orchestrator_settings)
    await orchestrator_client.post("/v1/livekit/webhook", content=body, headers=headers)

    text = (await orchestrator_client.get("/metrics")).text

    assert metric_sample(text, 'baton_webhooks_total{event="room_started"}') == 1
