"""The orchestrator's log: JSON lines carrying each request's trace id and conversation id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from conversation.tracing import is_trace_id
from deploy.processes import free_port
from orchestrator.logs import TRACE_HEADER, json_handler
from orchestrator.settings import Settings
from orchestrator.tokens import widget_token
from tests.conftest import OrchestratorClientFactory
from tests.orchestrator.support import AUTH, create_conversation

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def lines() -> Iterator[Lines]:
    """The JSON lines the orchestrator's handler writes during the test, parsed."""
    stream = io.StringIO()
    handler = json_handler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def request_lines(lines: Lines, method: str, path: str) -> list[dict[str, Any]]:
    return [line for line in lines()
            if line["logger"] == "orchestrator.requests" and line["method"] == method
            and line["path"] == path]


async def test_a_request_gets_a_new_trace_id_returned_in_a_header_and_on_its_line(
        orchestrator_client: httpx.AsyncClient, lines: Lines) -> None:
    conversation_id = await create_conversation(orchestrator_client)

    response = await orchestrator_client.get(f"/v1/conversations/{conversation_id}",
                                             headers=AUTH)

    trace_id = response.headers[TRACE_HEADER]
    assert is_trace_id(trace_id)
    [line] = request_lines(lines, "GET", f"/v1/conversations/{conversation_id}")
    assert set(line) >= {"time", "level", "logger", "message", "status", "duration_ms"}
    assert (line["level"], line["status"]) == ("INFO", 200)
    assert (line["trace_id"], line["conversation_id"]) == (trace_id, conversation_id)


async def test_the_trace_id_of_an_incoming_traceparent_is_kept(
        orchestrator_client: httpx.AsyncClient, lines: Lines) -> None:
    response = await orchestrator_client.post("/v1/conversations", json={},
                                              headers=AUTH | {"traceparent": TRACEPARENT})

    assert response.headers[TRACE_HEADER] == TRACE
    [line] = request_lines(lines, "POST", "/v1/conversations")
    assert line["trace_id"] == TRACE and "conversation_id" not in line


async def test_a_malformed_traceparent_is_replaced_by_a_new_trace_id(
        orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.get("/healthz", headers={"traceparent": "00-xyz"})

    assert is_trace_id(response.headers[TRACE_HEADER])


async def test_records_logged_while_handling_a_request_carry_its_ids(
        orchestrator_client_factory: OrchestratorClientFactory,
        orchestrator_settings: Settings, lines: Lines) -> None:
    unreachable = orchestrator_settings.model_copy(
        update={"livekit_url": f"ws://127.0.0.1:{free_port()}", "livekit_timeout": 1.0})
    async with orchestrator_client_factory(unreachable) as client:
        conversation_id = await create_conversation(client)
        response = await client.post(f"/v1/conversations/{conversation_id}/voice",
                                     headers=AUTH | {"traceparent": TRACEPARENT})

    assert response.status_code == 503
    [warning] = [line for line in lines() if line["level"] == "WARNING"]
    assert (warning["trace_id"], warning["conversation_id"]) == (TRACE, conversation_id)


async def test_the_query_never_reaches_the_log(
        orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings,
        lines: Lines) -> None:
    conversation_id = await create_conversation(orchestrator_client)
    token = widget_token(orchestrator_settings, conversation_id).token

    await orchestrator_client.get(f"/v1/conversations/{conversation_id}/events",
                                  params={"token": token})

    # The test's own HTTP client logs its URLs; the orchestrator's records are the ones here.
    assert token not in json.dumps([line for line in lines()
                                    if line["logger"].startswith("orchestrator")])
    assert request_lines(lines, "GET", f"/v1/conversations/{conversation_id}/events")


def test_a_record_naming_its_conversation_keeps_it(lines: Lines) -> None:
    logging.getLogger("orchestrator.recovery").warning(
        "a waiting call could not be checked", extra={"conversation_id": "c-waiting"})

    [line] = lines()
    assert line["conversation_id"] == "c-waiting" and "trace_id" not in line
