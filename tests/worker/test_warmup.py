"""The warm-up done in the worker's forkserver: safe to fork after, and complete enough that an
opening's model calls import nothing on the job's loop."""

from __future__ import annotations

import json
import subprocess
import sys

# Run in a fresh interpreter: this test process has long started threads and LiveKit's client.
AFTER_THE_WARM_UP = """
import asyncio, json, ssl, sys, threading
import worker.preload
from livekit import rtc
from livekit.rtc._ffi_client import FfiClient
from livekit.agents import llm, stt, utils
from livekit.plugins import openai
from pydantic._internal._generate_schema import GenerateSchema
from modelserver import ModelServer
from worker.tools import SHARED_TOOLS

report = {"threads": threading.active_count(), "native_client": FfiClient._instance is not None,
          "tls_contexts": 0, "schemas": 0}

def counted(name, original):
    def count(*args, **kwargs):
        report[name] += 1
        return original(*args, **kwargs)
    return count

ssl.create_default_context = counted("tls_contexts", ssl.create_default_context)
GenerateSchema.generate_schema = counted("schemas", GenerateSchema.generate_schema)

async def streamed_transcription(server: ModelServer, recognizer: stt.STT) -> None:
    # A job's recognizer, built at process setup, starting to stream.
    async with utils.http_context.open():
        recognition = recognizer.stream()
        recognition.push_frame(rtc.AudioFrame(bytes(4800), 24000, 1, 2400))
        await server.wait_for_requests("/realtime")
        await recognition.aclose()
        await recognizer.aclose()

async def opening_model_calls() -> None:
    server = ModelServer()
    await server.start()
    chat = openai.LLM(base_url=server.url, api_key="test")
    speech = openai.TTS(base_url=server.url, api_key="test", response_format="pcm")
    before = set(sys.modules)
    context = llm.ChatContext()
    context.add_message(role="user", content="Where is my order A1234?")
    async with chat.chat(chat_ctx=context, tools=list(SHARED_TOOLS)) as stream:
        async for _chunk in stream:
            pass
    async with speech.synthesize("Hello there.") as synthesis:
        async for _audio in synthesis:
            pass
    report["imported"] = sorted(set(sys.modules) - before)
    recognizer = openai.STT(use_realtime=True, base_url=server.url, api_key="test")
    before = set(sys.modules)
    report["tls_contexts"] = report["schemas"] = 0
    await streamed_transcription(server, recognizer)
    report["transcription_imported"] = sorted(set(sys.modules) - before)
    await server.aclose()

asyncio.run(opening_model_calls())
print(json.dumps(report))
"""


def run_after_the_warm_up() -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", AFTER_THE_WARM_UP], capture_output=True,
                          text=True, timeout=120, check=True)
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_the_warm_up_leaves_no_thread_and_no_native_client_to_fork_with() -> None:
    report = run_after_the_warm_up()

    assert report["threads"] == 1
    assert report["native_client"] is False


def test_after_the_warm_up_an_openings_model_calls_import_nothing() -> None:
    assert run_after_the_warm_up()["imported"] == []


def test_after_the_warm_up_a_streamed_transcription_builds_no_tls_context_or_schema() -> None:
    """Regression: the realtime recognizer's first session built the framework's TLS context
    (about 50 ms) and the openai types' pydantic schemas on the job's loop, just before the
    first words."""
    report = run_after_the_warm_up()

    assert report["transcription_imported"] == []
    assert (report["tls_contexts"], report["schemas"]) == (0, 0)
