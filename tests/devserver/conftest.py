"""Fixtures for the agent, dispatch and SIP tests: own devservers and real agent workers."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from livekit import api

from devserver.process import DevServer
from tests.devserver.agent_helpers import (
    AgentWorker,
    own_devserver,
    start_worker,
    stop_workers,
    wait_for_status,
    workers_named,
)

LkApi = Callable[[DevServer], api.LiveKitAPI]


@pytest.fixture
def room_name() -> str:
    return f"room-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def lkapi_factory() -> AsyncIterator[Callable[[DevServer], api.LiveKitAPI]]:
    """livekit-api clients for any devserver, closed after the test."""
    clients: list[api.LiveKitAPI] = []

    def make(server: DevServer) -> api.LiveKitAPI:
        client = server.api()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("devserver-own")


@pytest.fixture(scope="package")
def agent_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[DevServer, dict[str, AgentWorker]]]:
    """A devserver with an explicit "echo" worker, an unnamed one and a "pool" of three.

    Shared by the agent and dispatch tests, which keep apart by room names.
    """
    module_dir = tmp_path_factory.mktemp("agents")
    server = own_devserver(module_dir)
    workers = {
        "echo": start_worker(
            server, module_dir, "echo", LIVEKIT_AGENT_NAME="echo", AGENT_EXECUTOR="process"
        ),
        "auto": start_worker(server, module_dir, "auto"),
        # Same name, different capacity: reported load 1.0 leaves no spare capacity ...
        "heavy": start_worker(
            server, module_dir, "heavy", LIVEKIT_AGENT_NAME="pool", AGENT_LOAD="1.0"
        ),
        # ... this one reports itself full (production mode, tiny threshold) ...
        "full": start_worker(
            server,
            module_dir,
            "full",
            mode="start",
            LIVEKIT_AGENT_NAME="pool",
            AGENT_LOAD="0.1",
            AGENT_LOAD_THRESHOLD="0.05",
        ),
        # ... and only this one can take work.
        "light": start_worker(
            server, module_dir, "light", LIVEKIT_AGENT_NAME="pool", AGENT_LOAD="0.5"
        ),
    }
    try:
        wait_for_status(
            server,
            lambda s: (
                len(workers_named(s, "echo")) == 1
                and len(workers_named(s, "")) == 1
                and sorted((w["status"], round(w["load"], 2)) for w in workers_named(s, "pool"))
                == [("WS_AVAILABLE", 0.5), ("WS_AVAILABLE", 1.0), ("WS_FULL", 0.1)]
            ),
            "workers did not register and report their load",
        )
        yield server, workers
    finally:
        stop_workers(workers.values())
        server.stop()


@pytest.fixture
def agent_server(agent_stack: tuple[DevServer, dict[str, AgentWorker]]) -> DevServer:
    return agent_stack[0]


@pytest.fixture
async def agent_room(
    agent_server: DevServer, room_name: str, lkapi_factory: LkApi
) -> AsyncIterator[str]:
    """A room name; the room is deleted afterwards so its jobs end."""
    yield room_name
    lk = lkapi_factory(agent_server)
    with contextlib.suppress(api.TwirpError):
        await lk.room.delete_room(api.DeleteRoomRequest(room=room_name))
