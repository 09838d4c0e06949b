"""The log on a Redis Cluster: clients that send each conversation to the node holding it, and
a bound on connections that callers wait at, as they do on one server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import MaxConnectionsError, MovedError

from conversation import (
    Channel,
    ConversationStore,
    MessageEvent,
    Role,
    StoreUnavailable,
)
from conversation.errors import redis_errors
from conversation.settings import StoreSettings
from deploy.processes import RedisClusterNodes, free_port

IDLE_READ_MS = 300


def said(text: str) -> MessageEvent:
    return MessageEvent(role=Role.USER, channel=Channel.CHAT, text=text)


@pytest.fixture
def cluster_settings(redis_cluster: RedisClusterNodes) -> StoreSettings:
    return StoreSettings(redis_url=redis_cluster.url, redis_cluster=True)


@pytest.fixture
async def cluster(cluster_settings: StoreSettings) -> AsyncIterator[RedisCluster]:
    client = cluster_settings.redis_client()
    assert isinstance(client, RedisCluster)
    await client.flushdb()
    yield client
    await client.aclose()


def held_by_another_node(cluster: RedisCluster, node: str) -> str:
    """A conversation id whose keys live on a node other than `node`."""
    return next(f"c-elsewhere-{n}" for n in range(1000)
                if cluster.get_node_from_key(f"conv:{{c-elsewhere-{n}}}").name != node)


async def test_conversations_on_every_node_are_written_through_the_services_client(
        cluster_settings: StoreSettings, cluster: RedisCluster) -> None:
    """Bug: both services built single-node clients; against a 3-primary cluster, a plain
    client failed 12 of 20 conversation creations with MOVED."""
    store = cluster_settings.store(cluster_settings.redis_client())
    ids = [f"c-spread-{n}" for n in range(20)]

    for conversation_id in ids:
        await store.create(conversation_id)
        await store.append(conversation_id, said(conversation_id))

    assert [(await store.read(c))[0].event.text for c in ids] == ids  # type: ignore[union-attr]
    holders = {cluster.get_node_from_key(f"conv:{{{c}}}").name for c in ids}
    assert len(holders) == len(cluster.get_primaries()) == 3
    await store.redis.aclose()


async def test_a_single_node_client_is_refused_a_conversation_another_node_holds(
        redis_cluster: RedisClusterNodes, cluster: RedisCluster) -> None:
    """Why the cluster setting exists: a node answers MOVED for keys it does not hold, and a
    single-node client does not follow it."""
    plain = StoreSettings(redis_url=redis_cluster.url).redis_client()
    elsewhere = held_by_another_node(cluster, f"127.0.0.1:{redis_cluster.nodes[0].port}")

    with pytest.raises(MovedError):
        await ConversationStore(plain).create(elsewhere)
    await plain.aclose()


async def test_callers_past_the_connection_bound_wait_for_a_free_connection(
        cluster_settings: StoreSettings, cluster: RedisCluster) -> None:
    bounded = cluster_settings.redis_client(max_connections=2, waiting_timeout=30,
                                            client_name="bounded")
    assert isinstance(bounded, RedisCluster)
    # Before it knows the slots, the client sends commands to any node and follows MOVED.
    await bounded.initialize()
    # Six blocking reads of keys in one slot: one node, at most two connections to it.
    reads = [bounded.xread({f"idle{{one-slot}}:{n}": "0-0"}, block=IDLE_READ_MS)
             for n in range(6)]

    assert await asyncio.gather(*reads) == [[]] * 6
    clients = await cluster.client_list(target_nodes=RedisCluster.ALL_NODES)
    readers = [c for node in clients.values() for c in node
               if c["name"] == "bounded" and c["cmd"] == "xread"]
    assert len(readers) == 2
    await bounded.aclose()


async def test_without_a_wait_a_node_out_of_connections_fails_the_command(
        cluster_settings: StoreSettings) -> None:
    """What the bound above replaces: redis-py's cluster client has no blocking pool."""
    unbounded = cluster_settings.redis_client(max_connections=2)
    assert isinstance(unbounded, RedisCluster)
    await unbounded.initialize()
    reads = [unbounded.xread({f"idle{{one-slot}}:{n}": "0-0"}, block=IDLE_READ_MS)
             for n in range(6)]

    with pytest.raises(MaxConnectionsError):
        await asyncio.gather(*reads)
    await unbounded.aclose()


async def test_a_caller_that_waits_past_the_timeout_finds_the_store_unavailable(
        cluster_settings: StoreSettings) -> None:
    bounded = cluster_settings.redis_client(max_connections=1, waiting_timeout=0.1)
    holding = asyncio.ensure_future(bounded.xread({"idle{held}": "0-0"}, block=500))
    await asyncio.sleep(0)  # let the first read take the one connection

    with pytest.raises(StoreUnavailable), redis_errors():
        await bounded.get("anything")
    await holding
    await bounded.aclose()


async def test_an_unreachable_cluster_is_a_retryable_store_error() -> None:
    settings = StoreSettings(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_cluster=True)
    store = settings.store(settings.redis_client(socket_connect_timeout=1))

    with pytest.raises(StoreUnavailable) as raised:
        await store.append("c1", said("hello"))

    assert raised.value.retryable
    await store.redis.aclose()
