"""A tiny livekit-agents worker for devserver tests: joins its room and says who it is.

Run it with the agents CLI (`python tests/devserver/agent_echo.py dev`) and LIVEKIT_URL,
LIVEKIT_API_KEY, LIVEKIT_API_SECRET pointing at a devserver. Environment knobs:
LIVEKIT_AGENT_NAME (explicit dispatch name; unset for automatic dispatch), AGENT_TAG (returned
in answers, to tell workers apart), AGENT_LOAD (the load it reports), AGENT_LOAD_THRESHOLD,
AGENT_REFUSE=1 (decline every job, letting the server offer it elsewhere), AGENT_STALL=1 (never
answer an offer), AGENT_EXECUTOR (thread or process).
"""

from __future__ import annotations

import asyncio
import json
import os

from livekit import rtc
from livekit.agents import AgentServer, JobContext, JobExecutorType, JobRequest, cli

READY_TOPIC = "echo.ready"


def _load() -> float:
    return float(os.environ.get("AGENT_LOAD", "0"))


def _options() -> dict[str, object]:
    options: dict[str, object] = {}
    if "AGENT_LOAD_THRESHOLD" in os.environ:
        options["load_threshold"] = float(os.environ["AGENT_LOAD_THRESHOLD"])
    return options


server = AgentServer(
    load_fnc=_load,
    num_idle_processes=0,
    port=0,
    job_executor_type=JobExecutorType(os.environ.get("AGENT_EXECUTOR", "thread")),
    **_options(),  # type: ignore[arg-type]
)


async def on_request(request: JobRequest) -> None:
    if os.environ.get("AGENT_STALL") == "1":
        # Never answer: the offer stays pending until the server gives up or the worker dies.
        await asyncio.Event().wait()
    if os.environ.get("AGENT_REFUSE") == "1":
        # terminate=False lets the server offer the job to another worker.
        await request.reject(terminate=False)
        return
    await request.accept()


@server.rtc_session(on_request=on_request)
async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    facts = {
        "worker": os.environ.get("AGENT_TAG", ""),
        "job_id": ctx.job.id,
        "dispatch_id": ctx.job.dispatch_id,
        "agent_name": ctx.job.agent_name,
        "metadata": ctx.job.metadata,
        "identity": ctx.room.local_participant.identity,
    }

    async def whoami(data: rtc.RpcInvocationData) -> str:
        return json.dumps({**facts, "caller": data.caller_identity})

    ctx.room.local_participant.register_rpc_method("whoami", whoami)
    await ctx.room.local_participant.send_text(json.dumps(facts), topic=READY_TOPIC)


if __name__ == "__main__":
    cli.run_app(server)
