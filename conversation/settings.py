"""The conversation log's settings, one definition read by every service that writes the log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings

from conversation.redisclient import RedisClient, open_client
from conversation.store import ConversationStore


def env(name: str) -> AliasChoices:
    """The environment name for deployments, the field name for code and tests."""
    return AliasChoices(name, name.lower().removeprefix("baton_"))


class StoreSettings(BaseSettings):
    """Where the log lives and how long it is kept. Both services inherit these fields, so a
    retention or length bound set for one is the one the other writes with."""

    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias=env("REDIS_URL"))
    redis_cluster: bool = Field(False, validation_alias=env("BATON_REDIS_CLUSTER"),
                                description="REDIS_URL is a node of a Redis Cluster (or a "
                                            "managed cluster's configuration endpoint): each "
                                            "key goes to the node that holds its slot")
    retention: timedelta = Field(timedelta(days=30), validation_alias=env("BATON_RETENTION"),
                                 description="Seconds a conversation is kept after its last "
                                             "activity")
    max_events: int = Field(10_000, ge=1, validation_alias=env("BATON_MAX_EVENTS"),
                            description="Events a conversation's log keeps; older ones are "
                                        "dropped and counted")

    @field_validator("retention", mode="before")
    @classmethod
    def _retention_seconds(cls, value: object) -> object:
        return seconds(value)

    def redis_client(self, *, max_connections: int | None = None,
                     waiting_timeout: float | None = None, **options: Any) -> RedisClient:
        """A client of the log's Redis, one server or a cluster as configured. With
        `waiting_timeout`, a caller that finds all `max_connections` busy waits that long for
        one, instead of failing at once."""
        return open_client(self.redis_url, cluster=self.redis_cluster,
                           max_connections=max_connections, waiting_timeout=waiting_timeout,
                           **options)

    def store(self, redis: RedisClient) -> ConversationStore:
        return ConversationStore(redis, retention=self.retention, max_events=self.max_events)


def seconds(value: object) -> object:
    """Environment values are plain seconds ("600"); ISO 8601 durations also work."""
    if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        return float(value)
    return value
