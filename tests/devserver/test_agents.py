"""Real livekit-agents workers on /agent: registration, jobs, load, refusal and crashes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from livekit import api, rtc

from devserver.process import DevServer
from tests.devserver.agent_helpers import (
    own_devserver,
    start_worker,
    stop_workers,
    visitor,
    wait_for_status,
    workers_named,
)
from tests.devserver.conftest import LkApi
from tests.devserver.rtc_helpers import WAIT

# Worker processes (and the process each job gets) start slowly on a loaded machine.
pytestmark = [pytest.mark.realtime, pytest.mark.timeout(300)]


@pytest.fixture
def server(agent_server: DevServer) -> DevServer:
    return agent_server


@pytest.fixture
def room(agent_room: str) -> str:
    return agent_room


async def test_an_explicit_dispatch_sends_the_named_agent_who_joins_and_answers(
    server: DevServer, room: str, lkapi_factory: LkApi
) -> None:
    lk = lkapi_factory(server)
    async with visitor(server, room) as person:
        dispatch = await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="echo", room=room, metadata="from chat")
        )
        agent = await person.next_agent("echo")
        answer = await person.ask(agent["identity"])
        joined = person.room.remote_participants[agent["identity"]]
    assert dispatch.id.startswith("AD_")
    assert answer["worker"] == "echo"
    assert answer["dispatch_id"] == dispatch.id
    assert answer["job_id"].startswith("AJ_")
    assert answer["metadata"] == "from chat"
    assert answer["caller"] == "visitor"
    assert joined.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
    assert joined.attributes["lk.agent_name"] == "echo"


async def test_an_unnamed_worker_gets_a_job_automatically_when_a_room_starts(
    server: DevServer, room: str
) -> None:
    async with visitor(server, room) as person:
        agent = await person.next_agent("")
    assert agent["worker"] == "auto"
    assert agent["agent_name"] == ""


async def test_a_job_goes_to_the_worker_with_spare_capacity(
    server: DevServer, room: str, lkapi_factory: LkApi
) -> None:
    lk = lkapi_factory(server)
    async with visitor(server, room) as person:
        await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="pool", room=room)
        )
        agent = await person.next_agent("pool")
    assert agent["worker"] == "light"


async def test_deleting_the_room_terminates_its_job_on_the_worker(
    server: DevServer, room: str, lkapi_factory: LkApi
) -> None:
    lk = lkapi_factory(server)
    async with visitor(server, room) as person:
        await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="echo", room=room)
        )
        agent = await person.next_agent("echo")
        await lk.room.delete_room(api.DeleteRoomRequest(room=room))
    job_id = agent["job_id"]
    status = await asyncio.to_thread(
        wait_for_status,
        server,
        lambda s: (
            any(j["id"] == job_id and j["status"] == "JS_SUCCESS" for j in s["jobs"])
            and all(job_id not in w["jobs"] for w in s["workers"])
        ),
        "job did not end",
        WAIT,
    )
    assert [j["error"] for j in status["jobs"] if j["id"] == job_id] == ["room closed"]


async def test_a_worker_connection_without_the_agent_grant_is_refused(server: DevServer) -> None:
    token = (
        api.AccessToken(server.api_key, server.api_secret)
        .with_grants(api.VideoGrants(room_list=True))
        .to_jwt()
    )
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(
                f"{server.url}/agent", headers={"Authorization": f"Bearer {token}"}
            )
    assert refused.value.status == 401


# Failover: its own devserver, which honours restart policies as LiveKit Cloud does.


@pytest.fixture(scope="module")
def failover(module_dir: Path) -> Iterator[tuple[DevServer, Path]]:
    log_dir = module_dir / "failover"
    log_dir.mkdir()
    server = own_devserver(log_dir, DEVSERVER_HONOUR_RESTART_POLICY="1")
    yield server, log_dir
    server.stop()


async def test_a_refused_job_is_offered_to_another_worker(
    failover: tuple[DevServer, Path], room_name: str, lkapi_factory: LkApi
) -> None:
    server, log_dir = failover
    # The refuser has the most spare capacity, so it is almost always asked first.
    refuser = start_worker(
        server, log_dir, "refuser", LIVEKIT_AGENT_NAME="flaky", AGENT_REFUSE="1", AGENT_LOAD="0.0"
    )
    taker = start_worker(server, log_dir, "taker", LIVEKIT_AGENT_NAME="flaky", AGENT_LOAD="0.9")
    try:
        await asyncio.to_thread(
            wait_for_status,
            server,
            lambda s: sorted(round(w["load"], 2) for w in workers_named(s, "flaky")) == [0.0, 0.9],
            "flaky workers did not register",
        )
        lk = lkapi_factory(server)
        async with visitor(server, room_name) as person:
            await lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name="flaky", room=room_name)
            )
            agent = await person.next_agent("flaky")
    finally:
        stop_workers([refuser, taker])
    assert agent["worker"] == "taker"


async def test_a_job_whose_worker_dies_before_answering_is_offered_to_another(
    failover: tuple[DevServer, Path], room_name: str, lkapi_factory: LkApi
) -> None:
    server, log_dir = failover
    # The staller has all the spare capacity, so it is almost always asked first.
    staller = start_worker(
        server, log_dir, "staller", LIVEKIT_AGENT_NAME="limbo", AGENT_STALL="1", AGENT_LOAD="0.0"
    )
    taker = start_worker(server, log_dir, "survivor", LIVEKIT_AGENT_NAME="limbo", AGENT_LOAD="0.99")
    try:
        await asyncio.to_thread(
            wait_for_status,
            server,
            lambda s: sorted(round(w["load"], 2) for w in workers_named(s, "limbo")) == [0.0, 0.99],
            "limbo workers did not register",
        )
        lk = lkapi_factory(server)
        async with visitor(server, room_name) as person:
            await lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name="limbo", room=room_name)
            )
            await asyncio.to_thread(
                wait_for_status,
                server,
                lambda s: any(w["offers"] or w["jobs"] for w in workers_named(s, "limbo")),
                "the job was not offered",
                WAIT,
            )
            staller.kill()
            agent = await person.next_agent("limbo")
    finally:
        stop_workers([staller, taker])
    assert agent["worker"] == "survivor"


async def test_a_crashed_workers_job_restarts_on_another_worker_as_its_policy_says(
    failover: tuple[DevServer, Path], room_name: str, lkapi_factory: LkApi
) -> None:
    server, log_dir = failover
    workers = {
        tag: start_worker(server, log_dir, tag, LIVEKIT_AGENT_NAME="phoenix")
        for tag in ("one", "two")
    }
    try:
        await asyncio.to_thread(
            wait_for_status,
            server,
            lambda s: len(workers_named(s, "phoenix")) == 2,
            "phoenix workers did not register",
        )
        lk = lkapi_factory(server)
        async with visitor(server, room_name) as person:
            await lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(
                    agent_name="phoenix",
                    room=room_name,
                    restart_policy=api.JobRestartPolicy.JRP_ON_FAILURE,
                )
            )
            first = await person.next_agent("phoenix")
            workers[first["worker"]].kill()
            second = await person.next_agent("phoenix")
    finally:
        stop_workers(workers.values())
    assert second["worker"] != first["worker"]
    assert second["dispatch_id"] == first["dispatch_id"]
    assert second["job_id"] != first["job_id"]
