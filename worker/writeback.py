"""The ordered write-back buffer: every event of the call reaches the log once, in order."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from livekit.agents import AgentSession, ConversationItemAddedEvent, FunctionToolsExecutedEvent, llm

from conversation import (
    Channel,
    ConversationNotFound,
    ConversationStore,
    Event,
    StoreUnavailable,
    Transition,
)
from conversation.chatctx import events_from_item
from worker import metrics

logger = logging.getLogger("baton.worker.writeback")


@dataclass(frozen=True, slots=True)
class _Pending:
    event: Event
    transition: Transition | None


class WriteBack:
    """Writes events in the order they were added, holding them while Redis is away.

    One task does all writes, so order holds even across an outage; event ids make a write that
    reached Redis before its reply was lost a no-op the second time.
    """

    def __init__(self, store: ConversationStore, conversation_id: str, *,
                 retry_initial: float = 0.05, retry_max: float = 1.0) -> None:
        self._store = store
        self._conversation_id = conversation_id
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._pending: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.retries = 0
        self.stalled = asyncio.Event()
        """Set while writes wait for Redis to come back."""

    @property
    def pending(self) -> list[Event]:
        return [entry.event for entry in self._pending]

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="baton-writeback")

    def add(self, event: Event, *, transition: Transition | None = None) -> None:
        self._pending.append(_Pending(event, transition))
        metrics.BUFFER_DEPTH.inc()
        self._idle.clear()
        self._wakeup.set()

    def add_item(self, item: llm.ChatItem, *, channel: Channel) -> list[Event]:
        """Queue the log events for a committed chat item (several for a text longer than one
        event holds; none for items that are not conversation, such as instructions).

        Never raises, and never puts what was said in a log message: an item that cannot
        become an event is counted lost and logged by its kind alone.
        """
        try:
            events = events_from_item(item, channel=channel)
        except Exception as exc:  # a turn must never fail the session
            metrics.EVENTS_LOST.inc()
            logger.error("a committed %s could not be turned into a log event (%s); it was "
                         "not written", item.type, type(exc).__name__)
            return []
        for event in events:
            self.add(event)
        return events

    async def flushed(self) -> None:
        """Return once everything added so far is in the log."""
        await self._idle.wait()

    async def aclose(self, grace: float) -> None:
        """Flush for at most `grace` seconds, then stop; what is left is counted as lost."""
        try:
            if self._task is not None:
                await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            lost = len(self._pending)
            metrics.EVENTS_LOST.inc(lost)
            logger.error("the conversation log stayed unreachable; %d events of this call "
                         "were not written", lost)
        finally:
            if self._task is not None:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
                self._task = None
            metrics.BUFFER_DEPTH.dec(len(self._pending))
            self._pending.clear()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await self._drain()
            if not self._pending:
                self._idle.set()

    async def _drain(self) -> None:
        delay = self._retry_initial
        outage = False
        while self._pending:
            entry = self._pending[0]
            try:
                await self._store.append(self._conversation_id, entry.event,
                                         transition=entry.transition)
            except StoreUnavailable:
                self.retries += 1
                metrics.WRITE_RETRIES.inc()
                if not outage:
                    self.stalled.set()
                    logger.warning("the conversation log is unreachable; holding %d events "
                                   "in order until it returns", len(self._pending))
                    outage = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            except ConversationNotFound:
                # The conversation was deleted or expired: nothing can ever be written to it.
                lost = len(self._pending)
                metrics.EVENTS_LOST.inc(lost)
                metrics.BUFFER_DEPTH.dec(lost)
                self._pending.clear()
                logger.error("the conversation no longer exists; dropped %d events", lost)
                return
            except Exception as exc:  # one bad event must not block the rest
                # Skipped loudly, by kind and error type only: the exception's text can quote
                # what was said.
                logger.error("could not write a %s event (%s); skipping it", entry.event.kind,
                             type(exc).__name__)
                metrics.EVENTS_LOST.inc()
                self._pending.popleft()
                metrics.BUFFER_DEPTH.dec()
                continue
            if outage:
                logger.info("the conversation log is reachable again; writing held events")
                self.stalled.clear()
                outage = False
            delay = self._retry_initial
            self._pending.popleft()
            metrics.BUFFER_DEPTH.dec()
            metrics.EVENTS_WRITTEN.labels(entry.event.kind).inc()


def record_session(session: AgentSession[Any], writeback: WriteBack, *,
                   channel: Channel | Callable[[], Channel]) -> None:
    """Queue every committed turn (spoken or typed, interrupted or not) and every tool round
    trip of the session for the log, as the framework reports them.

    `channel` may be a function, read as each event comes: a session can start before the
    call's channel is known (it is the visitor's, and they may not be in the room yet).
    """

    def channel_now() -> Channel:
        return channel() if callable(channel) else channel

    def on_item_added(event: ConversationItemAddedEvent) -> None:
        if isinstance(event.item, llm.ChatMessage):
            writeback.add_item(event.item, channel=channel_now())

    def on_tools_executed(event: FunctionToolsExecutedEvent) -> None:
        for call, output in event.zipped():
            writeback.add_item(call, channel=channel_now())
            writeback.add_item(output, channel=channel_now())

    session.on("conversation_item_added", on_item_added)
    session.on("function_tools_executed", on_tools_executed)
