"""Typed errors of the conversation log; each says whether retrying can help."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from redis.exceptions import ClusterDownError, RedisClusterException, SlotNotCoveredError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class BatonError(Exception):
    """Base of every error Baton raises on purpose."""

    retryable: bool = False
    retry_after: int = 1
    """Seconds a retry should wait, when retrying can help."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(BatonError):
    """The caller sent something malformed; nothing was written."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class ConversationNotFound(BatonError):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"conversation {conversation_id!r} does not exist")
        self.conversation_id = conversation_id


class ConversationExists(BatonError):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"conversation {conversation_id!r} already exists")
        self.conversation_id = conversation_id


class StoreUnavailable(BatonError):
    """Redis did not answer; the write may be retried with the same event id."""

    retryable = True


@contextlib.contextmanager
def redis_errors() -> Iterator[None]:
    """Report Redis being unreachable as the one retryable StoreUnavailable, whoever calls it.

    A Redis Cluster is unreachable too when it is down (a primary lost with no replica to take
    its slots) or when the client cannot reach any node to learn where the slots are; the
    cluster client reports the latter as a plain RedisClusterException caused by the
    connection error, unlike its refusals of a command, which are errors of the caller.
    """
    try:
        yield
    except (*_UNREACHABLE, ClusterDownError, SlotNotCoveredError) as exc:
        raise StoreUnavailable(f"Redis is unreachable: {type(exc).__name__}") from exc
    except RedisClusterException as exc:
        if isinstance(exc.__cause__, _UNREACHABLE):
            raise StoreUnavailable(
                f"Redis is unreachable: {type(exc.__cause__).__name__}") from exc
        raise
