"""Clients of the log's Redis: one server, or a Redis Cluster whose callers wait for a free
connection the way a blocking pool's callers do."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, TypeAlias

import redis.asyncio as aioredis
from redis._defaults import DEFAULT_SOCKET_TIMEOUT
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.typing import EncodableT

RedisClient: TypeAlias = aioredis.Redis | RedisCluster
"""What the store, the locks and the registries are given; every operation they send touches
keys of one hash slot, so either kind serves them."""

DEFAULT_MAX_CONNECTIONS = 100

SUBSCRIPTION_CONNECTIONS = 4
"""Connections of each cluster node left outside the commands' bound: a pub/sub subscription
holds one for as long as it listens."""


def open_client(url: str, *, cluster: bool = False, max_connections: int | None = None,
                waiting_timeout: float | None = None, **options: Any) -> RedisClient:
    """A client of `url`; with `cluster`, of the Redis Cluster that `url` is a node (or a
    managed cluster's configuration endpoint) of.

    With `waiting_timeout`, a caller that finds all `max_connections` busy waits that long for
    one instead of failing at once, and then fails as an unreachable Redis does.
    """
    if cluster:
        if waiting_timeout is None:
            return RedisCluster.from_url(
                url, max_connections=max_connections or DEFAULT_MAX_CONNECTIONS, **options)
        return WaitingRedisCluster.from_url(
            url, max_connections=max_connections or DEFAULT_MAX_CONNECTIONS,
            waiting_timeout=waiting_timeout, **options)
    if waiting_timeout is None:
        return aioredis.Redis.from_url(url, max_connections=max_connections, **options)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections or DEFAULT_MAX_CONNECTIONS,
        timeout=waiting_timeout, **options)
    return aioredis.Redis.from_pool(pool)


def connection_options(client: RedisClient) -> dict[str, Any]:
    """The options each of the client's connections is made with (timeouts among them)."""
    if isinstance(client, RedisCluster):
        return dict(client.get_connection_kwargs())
    return dict(client.connection_pool.connection_kwargs)


def longest_block(client: RedisClient) -> timedelta:
    """How long a blocking read (XREAD BLOCK) may wait: it must end before the client's read
    timeout, or redis-py reports an idle stream as an unreachable server. Half the timeout,
    since a loaded machine can take a good part of a second to wake the reader after Redis
    answered."""
    timeout = connection_options(client).get("socket_timeout", DEFAULT_SOCKET_TIMEOUT)
    if timeout is None:
        return timedelta.max
    return timedelta(seconds=float(timeout) * 0.5)


async def serving(client: RedisClient) -> bool:
    """Whether the client's Redis takes commands: it answers PING, and a cluster's node sees
    the cluster whole. A cluster that lost a primary refuses every key (CLUSTERDOWN) while
    its nodes still answer PING."""
    if isinstance(client, RedisCluster):
        info = await client.cluster_info()
        return bool(info.get("cluster_state") == "ok")
    return bool(await client.ping())


@contextlib.asynccontextmanager
async def subscribed(client: RedisClient, channel: str) -> AsyncIterator[PubSub]:
    """A subscription to `channel`, subscribe confirmations left out of its messages.

    A cluster client's pub/sub connects to the node that holds the channel's slot (PUBLISH
    reaches every node of a cluster), and looks it up in a slot table that only a command
    fills: a client that has sent none yet fails with a KeyError. So the client learns the
    slots first.
    """
    if isinstance(client, RedisCluster):
        await client.initialize()
    async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
        await pubsub.subscribe(channel)
        yield pubsub


class WaitingRedisCluster(RedisCluster):
    """A cluster client holding at most `max_connections` connections busy at once over all
    nodes, where a caller past the bound waits up to `waiting_timeout` for one.

    redis-py's cluster client has no blocking pool: a node out of connections fails the
    command at once. Commands and pipelines take a slot here first, so a burst queues as it
    does on one server, and no node is ever asked for more than it may open.
    """

    def __init__(self, *, waiting_timeout: float,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, **options: Any) -> None:
        super().__init__(max_connections=max_connections + SUBSCRIPTION_CONNECTIONS, **options)
        self._slots = asyncio.Semaphore(max_connections)
        self._waiting_timeout = waiting_timeout

    @contextlib.asynccontextmanager
    async def connection_slot(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._waiting_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise RedisConnectionError(
                f"no Redis connection free within {self._waiting_timeout:g} s") from None
        try:
            yield
        finally:
            self._slots.release()

    async def execute_command(self, *args: EncodableT, **kwargs: Any) -> Any:
        async with self.connection_slot():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None,
                 shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:
            # Refused by the parent, with its reason.
            return super().pipeline(transaction, shard_hint)
        # redis-py's own pipeline() builds its class the same way; its commands protocol
        # declares an attribute that the pipeline never sets, which mypy reads as abstract.
        return _WaitingPipeline(self, transaction)  # type: ignore[abstract]


class _WaitingPipeline(ClusterPipeline):
    """A pipeline that takes one of its client's connection slots while it executes."""

    def __init__(self, client: WaitingRedisCluster, transaction: Any | None) -> None:
        super().__init__(client, transaction)
        self._waiting_client = client

    async def execute(self, raise_on_error: bool = True,
                      allow_redirections: bool = True) -> list[Any]:
        async with self._waiting_client.connection_slot():
            return await super().execute(raise_on_error, allow_redirections)
