"""The agent's voice in the room, and speech held back until the visitor can hear it.

An agent's session starts before the visitor is linked to it, so its opening is generated
before anyone can hear it. Its audio and text wait here (`after`), taken in as the models
produce them, and go on once the voice is audible: the visitor linked (with the opening
checked against the log) and someone subscribed to the agent's track. Holding them in the
agent's nodes rather than in the room output keeps a held speech cleanly interruptible: the
framework's output counts a segment as soon as its first frame is handed over, and a segment
whose frames wait inside the output for a subscriber would never be reported as played, so
interrupting it would stall every later speech of the session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator
from typing import TypeVar

from livekit import rtc
from livekit.agents import room_io

logger = logging.getLogger("baton.worker")

T = TypeVar("T")

TRACK_NAME = "roomio_audio"
"""The framework's own name for the agent's track, kept so the agent sounds the same to clients."""


class AgentVoice:
    """The agent's audio track, published as soon as the room is connected.

    The framework's room output publishes it only once a participant is linked, and LiveKit's
    SDK sends the offer for a new track 150 ms after it is published (it debounces
    negotiation), so that wait and the negotiation come after the visitor is in the room. The
    agent usually joins before the visitor's browser does: published while it waits, the track
    is there to subscribe to the moment the visitor joins. It is the output the framework
    would have built (`room_io._ParticipantAudioOutput`, which it exports), given to the
    session as its audio output with the room output's own turned off.
    """

    def __init__(self, room: rtc.Room) -> None:
        options = room_io.AudioOutputOptions()
        self.output = room_io._ParticipantAudioOutput(
            room, sample_rate=options.sample_rate, num_channels=options.num_channels,
            track_publish_options=options.track_publish_options, track_name=TRACK_NAME)
        loop = asyncio.get_running_loop()
        self._linked: asyncio.Future[None] = loop.create_future()
        self.audible: asyncio.Future[None] = loop.create_future()
        """Done once the visitor is linked and someone is subscribed to the track."""
        for step in (self._linked, self.output.subscribed):
            step.add_done_callback(self._check_audible)
        self._publishing: asyncio.Task[None] | None = None

    def publish(self) -> None:
        """Publish the track in the connected room; subscribers may come at any time after."""
        if self._publishing is None:
            self._publishing = asyncio.create_task(self.output.start(), name="baton-voice")
            self._publishing.add_done_callback(_log_failure)

    def link(self) -> None:
        """The visitor is linked and the opening current: speech may play once heard."""
        if not self._linked.done():
            self._linked.set_result(None)

    async def aclose(self) -> None:
        if self._publishing is not None:
            self._publishing.cancel()
            await asyncio.gather(self._publishing, return_exceptions=True)
        await self.output.aclose()

    def _check_audible(self, _step: asyncio.Future[None]) -> None:
        if self._linked.done() and self.output.subscribed.done() and not self.audible.done():
            self.audible.set_result(None)


def _log_failure(publishing: asyncio.Task[None]) -> None:
    if not publishing.cancelled() and (error := publishing.exception()) is not None:
        logger.error("the agent's audio track could not be published: %s", error)


class _End:
    """The source has nothing more."""


async def after(ready: asyncio.Future[None] | None,
                source: AsyncIterable[T]) -> AsyncIterator[T]:
    """`source`'s items, passed on once `ready` is done and taken in meanwhile."""
    if ready is None or ready.done():
        async for item in source:
            yield item
        return
    held: asyncio.Queue[T | _End] = asyncio.Queue()

    async def take_in() -> None:
        try:
            async for item in source:
                held.put_nowait(item)
        finally:
            held.put_nowait(_End())

    taking = asyncio.create_task(take_in(), name="baton-held-speech")
    try:
        # Waited on, never awaited: cancelling this speech must not cancel the room's future.
        await asyncio.wait([ready])
        while not isinstance(entry := await held.get(), _End):
            yield entry
        await taking
    finally:
        taking.cancel()
        await asyncio.gather(taking, return_exceptions=True)
