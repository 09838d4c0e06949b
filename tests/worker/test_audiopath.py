"""Speech held until the visitor can hear it: taken in meanwhile, passed on in order, and
dropped cleanly when the speech is interrupted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from worker.audiopath import after


class Source:
    """What a model node would yield, noting how far it has been read."""

    def __init__(self, *items: int) -> None:
        self.items = items
        self.taken: list[int] = []
        self.first_taken = asyncio.Event()
        self.all_taken = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[int]:
        for item in self.items:
            self.taken.append(item)
            self.first_taken.set()
            yield item
        self.all_taken.set()


def path() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


async def test_items_are_taken_in_before_the_path_is_up_and_passed_on_once_it_is() -> None:
    ready, source = path(), Source(1, 2, 3)
    passed: list[int] = []

    async def listen() -> None:
        async for item in after(ready, source):
            passed.append(item)

    listening = asyncio.create_task(listen())
    await source.all_taken.wait()
    assert passed == []

    ready.set_result(None)
    await listening
    assert passed == [1, 2, 3]


async def test_without_a_path_to_wait_for_items_pass_straight_on() -> None:
    assert [item async for item in after(None, Source(4, 5))] == [4, 5]


async def test_interrupting_a_held_speech_leaves_the_path_alone() -> None:
    ready, source = path(), Source(1, 2)

    async def listen() -> None:
        async for _item in after(ready, source):
            pass

    listening = asyncio.create_task(listen())
    await source.first_taken.wait()
    listening.cancel()
    await asyncio.gather(listening, return_exceptions=True)

    assert listening.cancelled() and not ready.done()


async def test_a_failure_of_the_source_reaches_the_listener() -> None:
    async def failing() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("the TTS failed")

    ready = path()
    held = after(ready, failing())
    ready.set_result(None)

    with pytest.raises(RuntimeError, match="the TTS failed"):
        async for _item in held:
            pass
