"""AgentDispatchService through livekit-api: create, list, delete, and dispatch from tokens."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from livekit import api

from devserver.process import DevServer
from tests.devserver.agent_helpers import visitor
from tests.devserver.conftest import LkApi
from tests.devserver.rtc_helpers import WAIT

# Worker processes (and the process each job gets) start slowly on a loaded machine.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def server(agent_server: DevServer) -> DevServer:
    return agent_server


@pytest.fixture
def room(agent_room: str) -> str:
    return agent_room


async def test_repeated_create_dispatch_sends_another_agent(
    server: DevServer, room: str, lkapi_factory: LkApi
) -> None:
    lk = lkapi_factory(server)
    async with visitor(server, room) as person:
        for _ in range(2):
            await lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name="echo", room=room)
            )
        first, second = await person.next_agent("echo"), await person.next_agent("echo")
    assert first["identity"] != second["identity"]
    assert first["dispatch_id"] != second["dispatch_id"]


async def test_create_dispatch_creates_the_room_when_it_does_not_exist(
    server: DevServer, room: str, lkapi_factory: LkApi
) -> None:
    lk = lkapi_factory(server)
    # No worker has this name: the room is created all the same, and the dispatch is kept.
    created = await lk.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name="nobody", room=room)
    )
    rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
    listed = await lk.agent_dispatch.list_dispatch(room)
    assert [r.name for r in rooms.rooms] == [room]
    assert created.id in [d.id for d in listed]


async def test_list_dispatch_shows_each_dispatch_with_its_running_job(
    server: DevServer, room: str, lkapi_factory: LkApi
) -> None:
    lk = lkapi_factory(server)
    async with visitor(server, room) as person:
        created = await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="echo", room=room, metadata="m")
        )
        agent = await person.next_agent("echo")
        listed = await lk.agent_dispatch.list_dispatch(room)
        one = await lk.agent_dispatch.get_dispatch(created.id, room)
    ours = [d for d in listed if d.id == created.id]
    assert len(ours) == 1
    assert ours[0].agent_name == "echo" and ours[0].metadata == "m"
    assert [j.state.participant_identity for j in ours[0].state.jobs] == [agent["identity"]]
    assert ours[0].state.jobs[0].state.status == api.JobStatus.JS_RUNNING
    assert one is not None and one.id == created.id


async def test_deleting_a_dispatch_terminates_its_job_and_the_agent_leaves(
    server: DevServer, room: str, lkapi_factory: LkApi
) -> None:
    lk = lkapi_factory(server)
    async with visitor(server, room) as person:
        dispatch = await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="echo", room=room)
        )
        agent = await person.next_agent("echo")
        left = asyncio.Event()
        person.room.on(
            "participant_disconnected", lambda p: p.identity == agent["identity"] and left.set()
        )
        deleted = await lk.agent_dispatch.delete_dispatch(dispatch.id, room)
        await asyncio.wait_for(left.wait(), WAIT)
        remaining = await lk.agent_dispatch.list_dispatch(room)
    assert deleted.id == dispatch.id
    assert dispatch.id not in [d.id for d in remaining]


async def test_a_token_room_configuration_dispatches_its_agent_when_it_creates_the_room(
    server: DevServer, room: str
) -> None:
    config = api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name="echo", metadata="t")])
    token = (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity("visitor")
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_room_config(config)
        .to_jwt()
    )
    async with visitor(server, room, token) as person:
        agent = await person.next_agent("echo")
    assert (agent["worker"], agent["metadata"]) == ("echo", "t")


async def test_a_token_room_configuration_is_ignored_when_the_room_exists(
    server: DevServer, room: str, lkapi_factory: LkApi
) -> None:
    lk = lkapi_factory(server)
    await lk.room.create_room(api.CreateRoomRequest(name=room))
    config = api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name="echo")])
    token = (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity("visitor")
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_room_config(config)
        .to_jwt()
    )
    async with visitor(server, room, token):
        dispatches = await lk.agent_dispatch.list_dispatch(room)
    assert "echo" not in [d.agent_name for d in dispatches]


async def test_dispatch_calls_need_room_admin_for_that_room(server: DevServer, room: str) -> None:
    token = (
        api.AccessToken(server.api_key, server.api_secret)
        .with_grants(api.VideoGrants(room_admin=True, room="another-room"))
        .to_jwt()
    )
    async with aiohttp.ClientSession() as session:
        client = api.twirp_client.TwirpClient(session, server.http_url, "livekit")
        with pytest.raises(api.TwirpError) as refused:
            await client.request(
                "AgentDispatchService",
                "CreateDispatch",
                api.CreateAgentDispatchRequest(agent_name="echo", room=room),
                {"Authorization": f"Bearer {token}"},
                api.AgentDispatch,
            )
    assert refused.value.code == "unauthenticated"


async def test_deleting_an_unknown_dispatch_is_not_found(
    server: DevServer, room: str, lkapi_factory: LkApi
) -> None:
    lk = lkapi_factory(server)
    await lk.room.create_room(api.CreateRoomRequest(name=room))
    with pytest.raises(api.TwirpError) as refused:
        await lk.agent_dispatch.delete_dispatch("AD_unknown", room)
    assert refused.value.code == "not_found"
