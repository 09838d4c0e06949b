"""Taking turns from the queue: a consumer group member that answers up to `concurrency`
turns at once, one at a time per conversation, and takes over the turns of processes that died.

A turn is acknowledged once it is answered or known to need no answer. One that met a Redis
outage, or whose conversation another process kept busy, stays pending and is taken over after
`claim_after` seconds by whichever process looks first (possibly this one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

from redis.exceptions import ResponseError

from conversation import InvalidInput, StoreUnavailable
from conversation.chatturns import GROUP, KEY, Turn
from conversation.errors import redis_errors
from conversation.redisclient import RedisClient
from worker.chat import metrics
from worker.chat.answer import Answerer, Outcome
from worker.chat.settings import ChatSettings

logger = logging.getLogger("baton.chat")

READ_BLOCK = 5.0
"""Seconds one read waits for turns at most; under the client's socket timeout."""
LOCK_MARGIN = 10.0

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_Entries = Sequence[tuple[Any, Mapping[Any, Any]]]


class ConversationBusy(Exception):
    """Another process kept the conversation's lock for longer than a turn may take."""


class TurnConsumer:
    """One member of the chat agent's consumer group."""

    def __init__(self, redis: RedisClient, answerer: Answerer, settings: ChatSettings) -> None:
        self.redis = redis
        self.answerer = answerer
        self.settings = settings
        self.name = settings.consumer
        self._tasks: set[asyncio.Task[Outcome | None]] = set()
        self._in_hand: set[str] = set()
        """Entry ids being answered here."""
        self._stopping = asyncio.Event()
        self._release = redis.register_script(_RELEASE)

    def stop(self) -> None:
        """Take no more turns; `run` returns once the turns in hand are answered."""
        self._stopping.set()

    async def ensure_group(self) -> None:
        # From the start of the stream, so turns posted before the first chat agent ever ran
        # are answered (or dropped as stale by their age).
        with redis_errors():
            try:
                await self.redis.xgroup_create(KEY, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def run(self) -> None:
        await self.ensure_group()
        upkeep = self.settings.claim_after / 3
        next_upkeep = 0.0
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= next_upkeep:
                    next_upkeep = time.monotonic() + upkeep
                    await self._renew()
                    entries = await self._claim_stale(self._free())
                else:
                    entries = await self._read(self._free(), block=min(READ_BLOCK, upkeep))
            except StoreUnavailable as exc:
                logger.warning("turns not read: %s; retrying", exc.message)
                await self._pause(1.0)
                continue
            for entry_id, fields in entries:
                self._start(_text(entry_id), fields)
            if not self._free():
                await asyncio.wait(self._tasks, timeout=upkeep,
                                   return_when=asyncio.FIRST_COMPLETED)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.settings.turn_timeout + LOCK_MARGIN)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _free(self) -> int:
        return max(0, self.settings.concurrency - len(self._in_hand))

    async def _read(self, count: int, *, block: float) -> _Entries:
        if count == 0:
            return []
        with redis_errors():
            reply = cast(list[tuple[Any, _Entries]] | None, await self.redis.xreadgroup(
                GROUP, self.name, {KEY: ">"}, count=count, block=max(1, int(block * 1000))))
        return [entry for _stream, entries in reply or [] for entry in entries]

    async def _renew(self) -> None:
        """Reset the idle time of the turns in hand, so nobody takes over a turn that is only
        slow (a long model call) rather than abandoned."""
        if self._in_hand:
            with redis_errors():
                await self.redis.xclaim(KEY, GROUP, self.name, min_idle_time=0,
                                        message_ids=list(self._in_hand), justid=True)

    async def _claim_stale(self, count: int) -> _Entries:
        """Turns a process took and stopped renewing for `claim_after` seconds (it died)."""
        if count == 0:
            return []
        with redis_errors():
            reply = await self.redis.xautoclaim(
                KEY, GROUP, self.name, min_idle_time=int(self.settings.claim_after * 1000),
                start_id="0-0", count=count)
        return [entry for entry in cast(_Entries, reply[1]) if _text(entry[0]) not in self._in_hand]

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _start(self, entry_id: str, fields: Mapping[Any, Any]) -> None:
        task = asyncio.create_task(self.handle(entry_id, fields), name=f"baton-turn-{entry_id}")
        self._tasks.add(task)
        self._in_hand.add(entry_id)

        def done(finished: asyncio.Task[Outcome | None]) -> None:
            self._tasks.discard(finished)
            self._in_hand.discard(entry_id)

        task.add_done_callback(done)

    async def handle(self, entry_id: str, fields: Mapping[Any, Any]) -> Outcome | None:
        """Answer one entry and acknowledge it; None when it was left for a retry."""
        try:
            turn = Turn.of(fields)
        except InvalidInput as exc:
            logger.error("dropped a malformed turn: %s", exc.message)
            await self._ack(entry_id)
            return None
        log_fields = {"conversation_id": turn.conversation_id}
        age = time.time() - int(entry_id.split("-")[0]) / 1000
        if age > self.settings.turn_max_age:
            logger.warning("dropped a turn %.0f s old", age, extra=log_fields)
            metrics.TURNS.labels("stale").inc()
            await self._ack(entry_id)
            return None
        started = time.perf_counter()
        try:
            async with self._conversation_lock(turn.conversation_id):
                outcome = await self.answerer.answer(turn)
        except (StoreUnavailable, ConversationBusy) as exc:
            logger.warning("turn left for a retry: %s", exc, extra=log_fields)
            return None
        except Exception as exc:  # a turn that fails every time must not come back forever
            logger.error("a turn failed (%s); dropped", type(exc).__name__, extra=log_fields)
            metrics.TURNS.labels("error").inc()
            await self._ack(entry_id)
            return None
        metrics.TURNS.labels(outcome.value).inc()
        if outcome is Outcome.ANSWERED:
            metrics.TURN_SECONDS.observe(time.perf_counter() - started)
        logger.info("turn %s", outcome.value, extra=log_fields)
        await self._ack(entry_id)
        return outcome

    async def _ack(self, entry_id: str) -> None:
        try:
            with redis_errors():
                await self.redis.xack(KEY, GROUP, entry_id)
        except StoreUnavailable:
            # Taken over later and found answered.
            logger.warning("a turn could not be acknowledged; it will be seen again")

    @contextlib.asynccontextmanager
    async def _conversation_lock(self, conversation_id: str) -> AsyncIterator[None]:
        """One turn at a time per conversation, across processes: the second waits, then
        finds the first's reply in the log."""
        key = f"baton:chat-lock:{{{conversation_id}}}"
        token = secrets.token_hex(16)
        hold = self.settings.turn_timeout + LOCK_MARGIN
        deadline = time.monotonic() + hold
        delay = 0.01
        while True:
            with redis_errors():
                if await self.redis.set(key, token, nx=True, px=int(hold * 1000)):
                    break
            if time.monotonic() > deadline:
                raise ConversationBusy(f"conversation locked for more than {hold:.0f} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)
        try:
            yield
        finally:
            with contextlib.suppress(StoreUnavailable), redis_errors():
                await self._release(keys=[key], args=[token])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
