"""Real livekit-agents workers against the devserver: registration, dispatch, load, failover."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from livekit import api, rtc

from devserver.process import DevServer
from tests.devserver.conftest import (
    AgentWorker,
    own_devserver,
    start_worker,
    wait_for_status,
    workers_named,
)
from tests.devserver.rtc_helpers import WAIT

READY_TOPIC = "echo.ready"

LkApi = Callable[[DevServer], api.LiveKitAPI]


class Visitor:
    """An SDK participant that collects the agents' "ready" announcements."""

    def __init__(self) -> None:
        self.room = rtc.Room()
        self.ready: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self.room.register_text_stream_handler(READY_TOPIC, self._on_ready)

    def _on_ready(self, reader: rtc.TextStreamReader, identity: str) -> None:
        task = asyncio.get_running_loop().create_task(self._read(reader))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, reader: rtc.TextStreamReader) -> None:
        await self.ready.put(json.loads(await reader.read_all()))

    async def next_agent(self, agent_name: str) -> dict[str, Any]:
        """Facts about the next agent of that name to join and announce itself.

        Every room also gets the unnamed worker's agent (automatic dispatch), so filter.
        """
        async with asyncio.timeout(WAIT):
            while True:
                facts = await self.ready.get()
                if facts["agent_name"] == agent_name:
                    return facts

    async def ask(self, agent_identity: str) -> dict[str, Any]:
        reply = await self.room.local_participant.perform_rpc(
            destination_identity=agent_identity, method="whoami", payload="", response_timeout=WAIT
        )
        return dict(json.loads(reply))


@contextlib.asynccontextmanager
async def visitor(server: DevServer, room: str, token: str | None = None) -> AsyncIterator[Visitor]:
    person = Visitor()
    await asyncio.wait_for(
        person.room.connect(server.url, token or server.token("visitor", room)), WAIT
    )
    try:
        yield person
    finally:
        await person.room.disconnect()


@pytest.fixture(scope="module")
def stack(module_dir: Path) -> Iterator[tuple[DevServer, dict[str, AgentWorker]]]:
    """A devserver with an explicit "echo" worker, an unnamed one and a "pool" of three."""
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
                and sorted((w["status"], w["load"]) for w in workers_named(s, "pool"))
                == [("WS_AVAILABLE", 0.5), ("WS_AVAILABLE", 1.0), ("WS_FULL", 0.10000000149011612)]
            ),
            "workers did not register and report their load",
        )
        yield server, workers
    finally:
        for worker in workers.values():
            worker.process.stop()
        server.stop()


@pytest.fixture
def server(stack: tuple[DevServer, dict[str, AgentWorker]]) -> DevServer:
    return stack[0]


@pytest.fixture
async def room(server: DevServer, room_name: str, lkapi_factory: LkApi) -> AsyncIterator[str]:
    """A room name; the room is deleted afterwards so its jobs end."""
    yield room_name
    lk = lkapi_factory(server)
    with contextlib.suppress(api.TwirpError):
        await lk.room.delete_room(api.DeleteRoomRequest(room=room_name))


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
    await lk.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name="echo", room=room)
    )
    rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
    assert [r.name for r in rooms.rooms] == [room]


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
            lambda s: (
                sorted(w["load"] for w in workers_named(s, "flaky")) == [0.0, 0.8999999761581421]
            ),
            "flaky workers did not register",
        )
        lk = lkapi_factory(server)
        async with visitor(server, room_name) as person:
            await lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name="flaky", room=room_name)
            )
            agent = await person.next_agent("flaky")
    finally:
        refuser.process.stop()
        taker.process.stop()
    assert agent["worker"] == "taker"


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
        for worker in workers.values():
            worker.process.stop()
    assert second["worker"] != first["worker"]
    assert second["dispatch_id"] == first["dispatch_id"]
    assert second["job_id"] != first["job_id"]
