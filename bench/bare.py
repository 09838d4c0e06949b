"""A bare livekit-agents agent, what `bench.firstwords` compares Baton's first words with.

`python -m bench.bare start`, configured like the worker by the environment (`LIVEKIT_URL`,
`LIVEKIT_API_KEY`, `LIVEKIT_API_SECRET`, `OPENAI_API_KEY`, `OPENAI_BASE_URL`) plus
`BARE_AGENT_NAME` and `BARE_HEALTH_PORT`. It is the framework's own recipe: an `AgentServer`
whose setup loads Silero, an `AgentSession` started on the room, and a greeting generated once
it has started. It uses the same models as Baton's worker and the framework's defaults for
everything else, except where a default needs LiveKit Cloud (turn detection and interruptions,
which Baton sets the same way) or would refuse calls on a shared benchmark machine (CPU-based
load shedding).
"""

from __future__ import annotations

import math
import os

from livekit.agents import (
    Agent,
    AgentServer,
    AgentSession,
    JobContext,
    JobProcess,
    TurnHandlingOptions,
    cli,
)
from livekit.plugins import openai, silero

server = AgentServer(load_threshold=math.inf,
                     port=int(os.environ.get("BARE_HEALTH_PORT", "8081")))


def prewarm(proc: JobProcess) -> None:
    proc.userdata["vad"] = silero.VAD.load()


server.setup_fnc = prewarm


@server.rtc_session(agent_name=os.environ.get("BARE_AGENT_NAME", "bare-agent"))
async def entrypoint(ctx: JobContext) -> None:
    session: AgentSession[None] = AgentSession(
        stt=openai.STT(model="gpt-4o-mini-transcribe"),
        llm=openai.LLM(model="gpt-4.1-mini"),
        tts=openai.TTS(model="gpt-4o-mini-tts", voice="ash", response_format="pcm"),
        vad=ctx.proc.userdata["vad"],
        turn_handling=TurnHandlingOptions(turn_detection="vad", interruption={"mode": "vad"}),
    )
    await session.start(agent=Agent(instructions="You are a helpful voice assistant."),
                        room=ctx.room)
    session.generate_reply(instructions="Greet the user and offer your assistance.")


if __name__ == "__main__":
    cli.run_app(server)
