"""Speech held back until the visitor can hear it, with the models' work done meanwhile.

An agent's session starts before the visitor is linked to it, so its opening is generated
before anyone can hear it. Its audio and text wait here, taken in as the models produce them,
and go on the moment the visitor is subscribed to the agent's audio track. Holding them in the
agent's nodes rather than in the room output keeps a held speech cleanly interruptible: the
framework's output counts a segment as soon as its first frame is handed over, and a segment
whose frames wait inside the output for a subscriber would never be reported as played, so
interrupting it would stall every later speech of the session.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, TypeVar

from livekit.agents import AgentSession

T = TypeVar("T")


def audio_path(session: AgentSession[Any]) -> asyncio.Future[None] | None:
    """Done once someone is subscribed to the agent's audio in the room; None for a session
    without room audio (text mode), whose speech has nothing to wait for."""
    try:
        room = session.room_io
    except RuntimeError:
        return None
    return room.subscribed_fut


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
