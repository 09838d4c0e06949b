"""The chat agent: the voice agent's instructions, model and tools, plus the offer of a call."""

from __future__ import annotations

from livekit.agents import Agent, RunContext, function_tool, llm

from worker.instructions import CHAT
from worker.tools import SHARED_TOOLS, CallData

OFFER_VOICE_CALL = "offer_voice_call"


@function_tool(name=OFFER_VOICE_CALL)
async def offer_voice_call(context: RunContext[CallData], reason: str) -> str:
    """Show the visitor a button that continues this conversation with you in a voice call.

    Use it when talking would help: the visitor asks to talk or to be called, a pricing or
    compliance question needs several steps, or they sound frustrated.

    Args:
        reason: Why a call would help, in a few words the visitor will read, for example
            "to go through the plan change together".
    """
    # The offer itself is written to the log by the turn that ran this tool (a suggestion
    # event in place of the tool's call and result), with the rest of the reply.
    return ("The visitor now sees a 'switch to voice' button. Tell them in one sentence that "
            "they can click it to talk with you, and that you will remember this chat.")


CHAT_TOOLS = (*SHARED_TOOLS, offer_voice_call)


class ChatAgent(Agent):
    """Answers a typed turn with the conversation restored from the log."""

    def __init__(self, *, chat_ctx: llm.ChatContext) -> None:
        super().__init__(instructions=CHAT, chat_ctx=chat_ctx, tools=list(CHAT_TOOLS))
