"""Scripted OpenAI-compatible models: Baton's offline demo mode, and what the tests talk to.

The real `livekit-plugins-openai` code talks to it through `base_url` (`OPENAI_BASE_URL`). Tests
queue replies (or install a function of the request) and read back every request to assert what
the model was sent. Unscripted calls get a deterministic default that is useful end to end.
Answers come at once unless a `Latency` (e.g. `HOSTED`) says how long each model thinks.
Transcription is also served as OpenAI's realtime transcription (`modelserver.transcription`).
"""

from modelserver.latency import HOSTED, INSTANT, Latency
from modelserver.replies import (
    DEFAULT_TRANSCRIPT,
    GREETING,
    ChatReply,
    ChatScript,
    ToolCall,
    default_reply,
    message_text,
)
from modelserver.server import ModelServer, RecordedRequest
from modelserver.speech import SPEECH_SAMPLE_RATE, synthesize

__all__ = [
    "DEFAULT_TRANSCRIPT",
    "GREETING",
    "HOSTED",
    "INSTANT",
    "SPEECH_SAMPLE_RATE",
    "ChatReply",
    "ChatScript",
    "Latency",
    "ModelServer",
    "RecordedRequest",
    "ToolCall",
    "default_reply",
    "message_text",
    "synthesize",
]
