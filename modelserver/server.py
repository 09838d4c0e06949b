"""The scripted OpenAI-compatible HTTP server: chat completions (streamed, with tool calls),
speech and transcription (also realtime), recording every request it answers."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shutil
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from modelserver.latency import INSTANT, Latency
from modelserver.replies import (
    DEFAULT_TRANSCRIPT,
    ChatReply,
    ChatScript,
    default_reply,
    message_text,
)
from modelserver.speech import SPEAKING_RATE, check_pace, synthesize, wav_stats
from modelserver.transcription import serve as serve_transcription


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    body: dict[str, Any]
    """The JSON body, or for transcriptions the form fields plus `audio_seconds` and `audio_rms`;
    a realtime transcription records its `session.update` and each utterance it committed."""
    at: float


class ModelServer:
    """The server and its script; start it in a running event loop.

    `latency` delays each model's first useful byte (it may be changed between requests); the
    speech itself is made meanwhile, so a TTS answer starts after whichever takes longer.
    `words_per_minute` is the voice's pace; tests speak faster to spend less time listening.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 latency: Latency = INSTANT, words_per_minute: int = SPEAKING_RATE) -> None:
        check_pace(words_per_minute)
        self.host = host
        self.port = port
        self.latency = latency
        self.words_per_minute = words_per_minute
        self.requests: list[RecordedRequest] = []
        self.chat_replies: deque[ChatReply | ChatScript] = deque()
        self.transcripts: deque[str] = deque()
        self.chat_script: ChatScript = default_reply
        self.default_transcript = DEFAULT_TRANSCRIPT
        self._speech_cache: dict[tuple[str, str], tuple[bytes, str]] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._request_seen = asyncio.Condition()

    @property
    def url(self) -> str:
        """The base URL to give the plugin (`base_url` / `OPENAI_BASE_URL`)."""
        return f"http://{self.host}:{self.port}/v1"

    def script_chat(self, *replies: ChatReply | ChatScript | str) -> None:
        """Queue the next completions in order; once used up, `chat_script` answers."""
        for reply in replies:
            self.chat_replies.append(ChatReply(reply) if isinstance(reply, str) else reply)

    def script_transcripts(self, *texts: str) -> None:
        self.transcripts.extend(texts)

    def requests_to(self, suffix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith(suffix)]

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests_to("/chat/completions")]

    async def wait_for_requests(self, suffix: str, count: int = 1) -> list[RecordedRequest]:
        async with self._request_seen:
            await self._request_seen.wait_for(lambda: len(self.requests_to(suffix)) >= count)
        return self.requests_to(suffix)

    async def start(self) -> None:
        if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
            raise RuntimeError("the model server speaks with espeak-ng and sox: "
                               "apt-get install espeak-ng sox")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.on_response_prepare.append(_stamp_request_id)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_post("/v1/audio/transcriptions", self._transcription)
        app.router.add_get("/v1/realtime", self._realtime)
        # A client that hangs up stops its answer, as a hosted model does; closing the server
        # does not wait for answers still thinking.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _record(self, path: str, body: dict[str, Any]) -> None:
        async with self._request_seen:
            self.requests.append(RecordedRequest(path, body, time.time()))
            self._request_seen.notify_all()

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "baton-tests"}
            for name in ("gpt-4.1", "gpt-4o-mini-tts", "gpt-4o-mini-transcribe")]})

    def _next_reply(self, body: dict[str, Any]) -> ChatReply:
        scripted = self.chat_replies.popleft() if self.chat_replies else self.chat_script
        return scripted(body) if callable(scripted) else scripted

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        await self._record(request.path, body)
        reply = self._next_reply(body)
        completion_id = f"chatcmpl-{next(self._ids)}"
        calls = [(call.call_id or f"call_{next(self._ids)}", call) for call in reply.tool_calls]
        finish = "tool_calls" if calls else "stop"
        model = body.get("model", "scripted")
        if not body.get("stream"):
            await asyncio.sleep(self.latency.llm_first_token)
            message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
            if calls:
                message["tool_calls"] = [
                    {"id": cid, "type": "function",
                     "function": {"name": call.name, "arguments": call.arguments_json()}}
                    for cid, call in calls]
            return web.json_response({
                "id": completion_id, "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "message": message,
                                             "finish_reason": finish}],
                "usage": _usage(body, reply)})

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)

        async def send(choices: list[dict[str, Any]], **extra: Any) -> None:
            chunk = {"id": completion_id, "object": "chat.completion.chunk",
                     "created": int(time.time()), "model": model, "choices": choices, **extra}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        def delta(**fields: Any) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": fields, "finish_reason": None}]

        await asyncio.sleep(self.latency.llm_first_token)
        await send(delta(role="assistant", content=""))
        for piece in re.findall(r"\S+\s*", reply.text):
            await send(delta(content=piece))
        for index, (cid, call) in enumerate(calls):
            await send(delta(tool_calls=[{"index": index, "id": cid, "type": "function",
                                          "function": {"name": call.name, "arguments": ""}}]))
            await send(delta(tool_calls=[{"index": index,
                                          "function": {"arguments": call.arguments_json()}}]))
        await send([{"index": 0, "delta": {}, "finish_reason": finish}])
        await send([], usage=_usage(body, reply))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _speech(self, request: web.Request) -> web.Response:
        body = await request.json()
        await self._record(request.path, body)
        text = str(body.get("input", "")).strip()
        if not text:
            return web.json_response({"error": {"message": "input is empty"}}, status=400)
        wanted = "pcm" if body.get("response_format") == "pcm" else "wav"
        _, (audio, content_type) = await asyncio.gather(
            asyncio.sleep(self.latency.tts_first_byte), self._speech_for(text, wanted))
        return web.Response(body=audio, content_type=content_type)

    async def _speech_for(self, text: str, wanted: str) -> tuple[bytes, str]:
        key = (text, wanted)
        if key not in self._speech_cache:
            self._speech_cache[key] = await synthesize(
                text, wanted, words_per_minute=self.words_per_minute)
        return self._speech_cache[key]

    async def _transcription(self, request: web.Request) -> web.Response:
        form = await request.post()
        fields: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        upload = form.get("file")
        audio = upload.file.read() if isinstance(upload, web.FileField) else b""
        fields["audio_seconds"], fields["audio_rms"] = wav_stats(audio)
        await self._record(request.path, fields)
        await asyncio.sleep(self.latency.stt_result)
        text = self._next_transcript()
        if fields.get("response_format") == "verbose_json":
            return web.json_response({"text": text, "language": "english",
                                      "duration": fields["audio_seconds"], "segments": []})
        return web.json_response({"text": text})

    async def _realtime(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("intent") != "transcription":
            return web.json_response(
                {"error": {"message": "only ?intent=transcription is scripted"}}, status=400)
        return await serve_transcription(request, transcript=self._next_transcript,
                                         delay=lambda: self.latency.stt_result,
                                         record=self._record)

    def _next_transcript(self) -> str:
        return self.transcripts.popleft() if self.transcripts else self.default_transcript


async def _stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer names its request, as OpenAI's do (clients log the id, or warn without)."""
    response.headers.setdefault("x-request-id", f"req_{uuid.uuid4().hex}")


def _usage(body: dict[str, Any], reply: ChatReply) -> dict[str, int]:
    prompt = sum(len(message_text(m).split()) for m in body.get("messages", []))
    completion = len(reply.text.split()) + len(reply.tool_calls)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}
