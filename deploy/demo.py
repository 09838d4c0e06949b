"""`python -m deploy.demo`: a chat continued by voice against the running `make run` stack.

It plays the website's chat backend and a visitor: creates a conversation, types two chat
messages that Baton's chat agent answers, switches to voice, joins the call with the Python
rtc SDK, speaks a question with real (espeak-ng) speech, and prints the thread live from the
orchestrator's event stream.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
from datetime import UTC, datetime
from typing import Any

import aiohttp

from deploy.visitor import Visitor

CHAT = [
    "Hi, my order A1234 was supposed to arrive on Monday and it still hasn't.",
    "Thanks. Can I talk to someone instead of typing?",
]
CHAT_REPLY_WAIT = 20.0
"""Seconds to wait for the chat agent's reply; with BATON_CHAT_AGENT off none comes."""
# What the offline scripted speech-to-text hears whatever is said, so the printed thread reads
# the same with real models and without them.
QUESTION = "I would like to change my plan to the yearly one"
SPEAKERS = {"user": "visitor", "assistant": "agent", "human": "human", "system": "system"}


class Thread:
    """Follows the conversation's server-sent events and prints each one as it arrives."""

    def __init__(self) -> None:
        self.agent_voice_turns = 0
        self.agent_chat_turns = 0
        self.back_to_chat = asyncio.Event()
        self._changed = asyncio.Event()

    def show(self, kind: str, event: dict[str, Any]) -> None:
        if kind == "message":
            who = SPEAKERS.get(event["role"], event["role"])
            print(f"  [{event['channel']:<5}] {who:>7}: {event['text']}", flush=True)
            if event["role"] == "assistant":
                if event["channel"] == "voice":
                    self.agent_voice_turns += 1
                else:
                    self.agent_chat_turns += 1
        elif kind == "channel_switch":
            moved = f"{event['from_channel']} -> " if event["from_channel"] else ""
            print(f"  --- {moved}{event['to_channel']} ({event['trigger']}) ---", flush=True)
            if event["to_channel"] == "chat":
                self.back_to_chat.set()
        elif kind == "suggestion":
            print(f"  [chat ]   agent offers a voice call ({event['reason']})", flush=True)
        elif kind in ("tool_call", "tool_result"):
            detail = event.get("arguments") or event.get("output")
            print(f"  [tool ] {kind} {event['name']} {detail}", flush=True)
        self._changed.set()

    async def follow(self, http: aiohttp.ClientSession, url: str) -> None:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=None)) as response:
            response.raise_for_status()
            kind = ""
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[len("event: "):]
                elif line.startswith("data: "):
                    self.show(kind, json.loads(line[len("data: "):]))

    async def agent_turns(self, count: int, *, channel: str = "voice") -> None:
        while (self.agent_voice_turns if channel == "voice" else self.agent_chat_turns) < count:
            self._changed.clear()
            await self._changed.wait()


async def post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(url, json=body) as response:
        if response.status >= 400:
            raise SystemExit(f"{url}: {response.status} {await response.text()}")
        return dict(await response.json())


async def run(base: str, api_key: str, patience: float) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        identity = {"subject": "demo-customer-1", "method": "password",
                    "verified_at": datetime.now(UTC).isoformat()}
        conversation = await post(http, f"{base}/v1/conversations", {"identity": identity})
        cid = conversation["id"]
        print(f"conversation {cid}\n")
        thread = Thread()
        follower = asyncio.create_task(thread.follow(http, f"{base}/v1/conversations/{cid}/stream"))
        try:
            for count, text in enumerate(CHAT, 1):
                await post(http, f"{base}/v1/conversations/{cid}/messages",
                           {"role": "user", "text": text})
                try:
                    await asyncio.wait_for(thread.agent_turns(count, channel="chat"),
                                           CHAT_REPLY_WAIT)
                except TimeoutError:
                    print("  (no chat reply: is the chat agent running, and BATON_CHAT_AGENT "
                          "on?)", flush=True)
            switch = await post(http, f"{base}/v1/conversations/{cid}/voice",
                                {"trigger": "visitor"})
            visitor = Visitor()
            await visitor.join(switch["url"], switch["token"])
            try:
                await asyncio.wait_for(thread.agent_turns(1), patience)
                print(f"\n  (the visitor says: {QUESTION!r})\n", flush=True)
                await visitor.say(QUESTION)
                await asyncio.wait_for(thread.agent_turns(2), patience)
            finally:
                await visitor.leave()
            await asyncio.wait_for(thread.back_to_chat.wait(), patience)
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        async with http.get(f"{base}/v1/conversations/{cid}") as response:
            record = await response.json()
        print(f"\nstatus is back to {record['status']!r}; the visitor can keep typing.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orchestrator", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", default=os.environ.get("BATON_API_KEY", "dev-api-key"))
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    asyncio.run(run(args.orchestrator.rstrip("/"), args.api_key, args.timeout))


if __name__ == "__main__":
    main()
