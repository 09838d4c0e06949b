"""First-use work on the first words' path, done once per worker before any job needs it.

Python libraries build much of their machinery on first use: lazy imports (the openai client
imports each API's module on first access), pydantic schemas and generic classes, typing
caches of the request and response types. Done inside a job, each is a stall of the job's
event loop right before the first words. `warm_up` does all of it in advance by rehearsing the
model calls of an opening (a streamed chat completion with tools, the speech of a sentence,
the model list the LLM is prewarmed with) against canned answers that never leave the process,
and the start of a streamed transcription (the framework's HTTP session and its TLS context,
the realtime session's configuration) against a websocket on the loopback interface.

The worker's forkserver imports `worker.preload`, which runs it once for every job process;
`setup_process` runs it too for executors without a forkserver (a no-op when inherited). It
must leave no thread running and must not start LiveKit's native client: a process is forked
from the forkserver afterwards.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
from collections.abc import Coroutine
from typing import Any

import httpx2 as httpx
import openai
from aiohttp import web
from livekit import rtc
from livekit.agents import llm, utils
from livekit.plugins import openai as openai_plugin

from worker.agent import INSTRUCTIONS
from worker.tools import VOICE_TOOLS

WARM_IMPORTS = ("openai.lib.streaming.chat", "openai.pagination", "openai.resources.chat",
                "anyio._backends._asyncio", "anyio.streams.stapled",
                "livekit.agents.llm.async_toolset")
"""Modules the first call would import on first use that the rehearsal does not reach."""

_REHEARSAL_URL = "http://warm-up.invalid/v1"
_CHUNK = {"id": "warm-up", "object": "chat.completion.chunk", "created": 0, "model": "warm-up"}
_SPEECH = bytes(4800)

_warmed = False
_lock = threading.Lock()


def warm_up() -> None:
    """Do the first-use work of a call's first words in this process, once."""
    global _warmed
    with _lock:
        if _warmed:
            return
        for module in WARM_IMPORTS:
            importlib.import_module(module)
        _run(_rehearse())
        _warmed = True


def _run(rehearsal: Coroutine[Any, Any, None]) -> None:
    """Run the rehearsal on a loop of its own, in a thread when this one already has a loop
    (the thread executor's process setup)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(rehearsal)
        return
    runner = threading.Thread(target=asyncio.run, args=(rehearsal,), name="baton-warm-up")
    runner.start()
    runner.join()


def _answer(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    headers = {"x-request-id": "warm-up"}
    if path.endswith("/chat/completions"):
        return httpx.Response(200, headers=headers | {"content-type": "text/event-stream"},
                              content=_completion_stream())
    if path.endswith("/audio/speech"):
        return httpx.Response(200, headers=headers | {"content-type": "audio/pcm"},
                              content=_SPEECH)
    if path.endswith("/models"):
        return httpx.Response(200, headers=headers, json={"object": "list", "data": [
            {"id": "warm-up", "object": "model", "created": 0, "owned_by": "baton"}]})
    return httpx.Response(404, headers=headers, json={"error": {"message": "not rehearsed"}})


def _completion_stream() -> bytes:
    def delta(**fields: object) -> dict[str, object]:
        return {**_CHUNK, "choices": [{"index": 0, "delta": fields, "finish_reason": None}]}

    chunks = [
        delta(role="assistant", content=""),
        delta(content="Warming up. "),
        delta(tool_calls=[{"index": 0, "id": "call_warm", "type": "function",
                           "function": {"name": "lookup_order", "arguments": ""}}]),
        delta(tool_calls=[{"index": 0, "function": {"arguments": '{"order_id": "W1"}'}}]),
        {**_CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {**_CHUNK, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                                            "total_tokens": 2}},
    ]
    lines = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks] + ["data: [DONE]\n\n"]
    return "".join(lines).encode()


async def _rehearse() -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(_answer))
    client = openai.AsyncClient(api_key="warm-up", base_url=_REHEARSAL_URL, max_retries=0,
                                http_client=http)
    try:
        chat_ctx = llm.ChatContext()
        chat_ctx.add_message(role="system", content=INSTRUCTIONS)
        chat_ctx.add_message(role="user", content="Where is my order?")
        model = openai_plugin.LLM(model="warm-up", client=client)
        async with model.chat(chat_ctx=chat_ctx, tools=list(VOICE_TOOLS)) as stream:
            async for _chunk in stream:
                pass
        await client.models.list()
        speech = openai_plugin.TTS(client=client, response_format="pcm")
        async with speech.synthesize("Warming up.") as synthesis:
            async for _audio in synthesis:
                pass
    finally:
        await client.close()
    await _rehearse_transcription()


async def _rehearse_transcription() -> None:
    """Open a streamed transcription, send its configuration and a frame, and close it."""
    configured = asyncio.get_running_loop().create_future()

    async def session(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            if "input_audio_buffer.append" in message.data and not configured.done():
                configured.set_result(None)
        return socket

    app = web.Application()
    app.router.add_get("/v1/realtime", session)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with utils.http_context.open():
            recognizer = openai_plugin.STT(use_realtime=True, api_key="warm-up",
                                           base_url=f"http://127.0.0.1:{port}/v1")
            recognition = recognizer.stream()
            recognition.push_frame(rtc.AudioFrame(bytes(_SPEECH), 24_000, 1, len(_SPEECH) // 2))
            try:
                await asyncio.wait_for(configured, 10)
            finally:
                await recognition.aclose()
                await recognizer.aclose()
    finally:
        await runner.cleanup()
