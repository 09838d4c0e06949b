"""Typed errors of the conversation log; each says whether retrying can help."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


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
    """Report Redis being unreachable as the one retryable StoreUnavailable, whoever calls it."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailable(f"Redis is unreachable: {type(exc).__name__}") from exc
