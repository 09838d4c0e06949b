"""Warm transfer to a human, run by the agent inside the call.

Asked for by the agent's `transfer_to_human` tool, by a phrase the visitor says, or through the
API (the orchestrator writes the request into the log, which this call follows). The visitor
hears one line, then hold audio; the card is read from the log; a human is found (free on the
dashboard, else an on-call phone); in consult the agent briefs them while the visitor waits;
on connect (which cuts the briefing short, or the line when the human is ready before it ends)
everyone hears everyone, the agent introduces the human and only transcribes. Any
failure is typed, and the agent takes the conversation back and says what it can offer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from livekit import api, rtc
from livekit.agents import JobContext, llm
from livekit.agents.voice import SpeechHandle

from conversation import (
    Channel,
    ConversationStore,
    HandoffEvent,
    HandoffState,
    HandoffTrigger,
    MessageEvent,
    Role,
    Status,
    StoreUnavailable,
    VerifiedIdentity,
    attributes,
)
from conversation import handoffs as steps
from conversation.card import HandoffCard
from conversation.chatctx import chat_item
from conversation.desk import Desk
from conversation.events import HandoffFailure
from conversation.handoffs import Handoff, HandoffInProgress, HandoffStore, NotInCall
from worker import metrics
from worker.card import read_card
from worker.consult import Consult, HumanLeft, connect_wanted, heard_by_all, transcribe
from worker.handoffwords import LINE, OFFER, TAKE_BACK, briefing
from worker.holdmusic import HoldMusic
from worker.models import HandoffModels
from worker.phonehuman import Failed, dial_human
from worker.settings import WorkerSettings
from worker.writeback import WriteBack

logger = logging.getLogger("baton.worker.transfer")

TAKEN = timedelta(hours=4)
STOP_WAIT = 2.0
"""Seconds the end of a job waits for the handoff's tasks to stop."""
"""How long a human stays claimed by a handoff at most, should the end never be recorded."""


@dataclass(frozen=True, slots=True)
class Human:
    participant: rtc.RemoteParticipant
    name: str
    username: str
    """The desk username, or "phone" for an on-call phone."""

    @property
    def on_phone(self) -> bool:
        return attributes.is_phone(self.participant.kind)


class Transfer:
    """The handoffs of one call, one at a time."""

    def __init__(self, ctx: JobContext, store: ConversationStore, writeback: WriteBack,
                 settings: WorkerSettings, *, models: HandoffModels) -> None:
        self.ctx = ctx
        self.store = store
        self.handoffs = HandoffStore(store)
        self.desk = Desk(store.redis)
        self.writeback = writeback
        self.settings = settings
        self.card_llm = models.card_llm
        self.recognizer = models.recognizer
        self.voice_activity = models.voice_activity
        self.conversation_id = ctx.room.name
        self.session: Any = None
        self.agent: Any = None
        self.visitor: rtc.RemoteParticipant | None = None
        self.channel = Channel.VOICE
        self.identity: VerifiedIdentity | None = None
        self._flow: asyncio.Task[None] | None = None
        self._handoff: Handoff | None = None
        self._signals: asyncio.Queue[HandoffEvent] = asyncio.Queue()
        self._follower: asyncio.Task[None] | None = None

    async def attach(self, session: Any, agent: Any, visitor: rtc.RemoteParticipant,
                     channel: Channel, identity: VerifiedIdentity | None) -> None:
        """Follow the log for requests and the human's answers, and take up a handoff that
        was asked for before this agent joined, or that an agent before it was running."""
        self.session, self.agent, self.visitor = session, agent, visitor
        self.channel, self.identity = channel, identity
        newest, _count = await self.store.read_tail(self.conversation_id, 1)
        after = newest[-1].seq if newest else "0-0"
        self._follower = asyncio.create_task(self._follow(after), name="baton-handoff-log")
        current = await self.handoffs.current(self.conversation_id)
        if current is None or not current.active:
            return
        if current.state is HandoffState.REQUESTED:
            agent.scribe = self._scribe
            self._flow = asyncio.create_task(self._run(current), name="baton-handoff")
        elif current.state is HandoffState.CONNECTED:
            # A new agent in a call a human has: it only writes down what is said.
            agent.scribe = self._scribe
        else:
            # A handoff half done by an agent that is gone cannot be picked up where it
            # stopped: fail it plainly and help the visitor.
            self._handoff = current
            self._flow = asyncio.create_task(self._fail(current, Failed(HandoffFailure.FAILED)),
                                             name="baton-handoff")

    def request(self, trigger: HandoffTrigger, reason: str) -> bool:
        """Start a handoff unless one runs; False when one does."""
        if self._flow is not None and not self._flow.done():
            return False
        # At once, so the agent answers nothing more while the handoff starts.
        self.agent.scribe = self._scribe
        self._flow = asyncio.create_task(self._start(trigger, reason), name="baton-handoff")
        return True

    async def close(self, *, visitor_left: bool) -> None:
        """The call is ending: a handoff still in consult fails as `caller_left`."""
        tasks = {task for task in (self._follower, self._flow) if task is not None}
        for task in tasks:
            task.cancel()
        if tasks:
            _done, stuck = await asyncio.wait(tasks, timeout=STOP_WAIT)
            if stuck:
                # The end of the job must go on: the transcript is flushed after this.
                logger.error("%d handoff task(s) did not stop within %.0f s", len(stuck),
                             STOP_WAIT)
        handoff = self._handoff
        if handoff is None:
            return
        current = await self.handoffs.current(self.conversation_id)
        if current is None or current.id != handoff.id or not current.active:
            return
        if current.state is HandoffState.CONNECTED:
            await self._write(steps.ended(current, call_status=Status.CHAT), current.human)
        elif visitor_left:
            await self._write(steps.failed(current, HandoffFailure.CALLER_LEFT), current.human)
            self._count(current, HandoffFailure.CALLER_LEFT.value)
        await self._release(current)

    async def _start(self, trigger: HandoffTrigger, reason: str) -> None:
        try:
            handoff = await steps.start(self.handoffs, self.desk, self.conversation_id,
                                        trigger, reason)
        except (HandoffInProgress, NotInCall, StoreUnavailable) as exc:
            logger.warning("no handoff started: %s", type(exc).__name__)
            self.agent.scribe = None
            return
        await self._run(handoff)

    async def _follow(self, after: str) -> None:
        """Requests through the API start a handoff; the human's answers reach the one running."""
        async for stored in self.store.follow(self.conversation_id, after=after):
            event = stored.event
            if not isinstance(event, HandoffEvent):
                continue
            running = self._flow is not None and not self._flow.done()
            if event.state is HandoffState.REQUESTED and event.trigger is HandoffTrigger.API \
                    and not running:
                handoff = await self.handoffs.get(event.handoff_id)
                self._flow = asyncio.create_task(self._run(handoff), name="baton-handoff")
            else:
                self._signals.put_nowait(event)

    async def _run(self, handoff: Handoff) -> None:
        """The visitor hears the line while the card is read and a human found; the human is
        briefed apart from the visitor until they ask to connect (which cuts the briefing
        short, or the line when they ask before it ends: nobody waits for the agent to finish
        talking); then everyone hears everyone and the agent introduces the human."""
        self._handoff = handoff
        started = time.monotonic()
        metrics.HANDOFFS_STARTED.labels(handoff.trigger.value).inc()
        self.agent.scribe = self._scribe
        hold = HoldMusic(self.ctx.room)
        line = self.session.say(LINE, allow_interruptions=False)
        waiting = asyncio.create_task(self._hold_after(line, hold), name="baton-handoff-line")
        card_task = asyncio.create_task(self._card(handoff), name="baton-handoff-card")
        consult: Consult | None = None
        try:
            card = await card_task
            human, consult = await self._find_human(handoff, card)
            await consult.separate(human.participant)

            async def pressed() -> bool:
                return await self._signal(handoff, {HandoffState.CONNECTING}, None) is not None

            async with connect_wanted(self.ctx.room, human.participant, button=pressed,
                                      recognizer=self.recognizer,
                                      voice_activity=self.voice_activity) as wanted:
                either: list[asyncio.Future[Any]] = [waiting, wanted]
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
                if not waiting.done():
                    line.interrupt(force=True)
                # Awaited, not cancelled: a hold track being published must be known to stop.
                hold_sid = await waiting
                if wanted.done():
                    consult.hold_sid = hold_sid
                    _wanted_outcome(wanted)
                else:
                    consult.isolate(human.participant, hold_sid)
                    await self._brief(briefing(card, on_phone=human.on_phone), wanted)
            await consult.connect(human.participant)
            await hold.stop()
            handoff = await self.handoffs.get(handoff.id)
            await self._write(steps.connected(handoff), human.username)
            metrics.HANDOFF_CONNECT_SECONDS.observe(time.monotonic() - started)
            self._count(handoff, "connected")
            await self._with_human(handoff, human)
        except Failed as failure:
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            await hold.stop()
            if consult is not None:
                consult.release()
            else:
                heard_by_all(self.ctx.room)
            await self._fail(handoff, failure)
        finally:
            card_task.cancel()
            waiting.cancel()

    async def _hold_after(self, line: SpeechHandle, hold: HoldMusic) -> str | None:
        """Hold audio once the visitor has been told; the hold track's sid, or None when the
        line was cut short because the human is ready."""
        await line.wait_for_playout()
        if line.interrupted:
            return None
        return await hold.start()

    async def _brief(self, words: str, wanted: asyncio.Future[None]) -> None:
        """Brief the human until they ask to connect, or after the briefing until they do."""
        speech = self.session.say(words, allow_interruptions=False, add_to_chat_ctx=False)
        played = asyncio.ensure_future(speech.wait_for_playout())
        try:
            async with asyncio.timeout(self.settings.handoff_connect_timeout):
                await asyncio.wait({played, wanted}, return_when=asyncio.FIRST_COMPLETED)
                await asyncio.wait({wanted})
                _wanted_outcome(wanted)
        except TimeoutError:
            raise Failed(HandoffFailure.TIMEOUT) from None
        finally:
            if not speech.done():
                speech.interrupt(force=True)
            played.cancel()
            await asyncio.gather(played, return_exceptions=True)

    async def _find_human(self, handoff: Handoff, card: HandoffCard) -> tuple[Human, Consult]:
        """A free human on the dashboard, else an on-call phone; each kept apart from the
        visitor from the moment they could be heard."""
        for username in await self.desk.available():
            if await self.desk.take(username, handoff.id, hold=TAKEN):
                human = await self._offer(handoff, card, username)
                consult = Consult(self.ctx.room, self.ctx.api, self._visitor(),
                                  human.participant.identity)
                return human, consult
        if self.settings.oncall_numbers and self.settings.sip_outbound_trunk:
            await self._write(steps.offered(handoff, human="phone", human_name="our on-call "
                                            "specialist", card=card), "phone")
            identity = f"human-phone-{secrets.token_hex(4)}"
            consult = Consult(self.ctx.room, self.ctx.api, self._visitor(), identity)
            try:
                participant = await dial_human(self.ctx, self.settings, handoff, identity,
                                               await self.desk.oncall_turn())
            except Failed:
                consult.release()
                raise
            handoff = await self.handoffs.get(handoff.id)
            await self._write(steps.accepted(handoff, human="phone"), "phone")
            return Human(participant, "our on-call specialist", "phone"), consult
        raise Failed(HandoffFailure.NO_HUMAN_AVAILABLE)

    async def _offer(self, handoff: Handoff, card: HandoffCard, username: str) -> Human:
        name = await self.desk.name_of(username)
        await self._write(steps.offered(handoff, human=username, human_name=name, card=card),
                          username)
        await self.desk.queue_add(username, handoff.id)
        answer = await self._signal(handoff, {HandoffState.ACCEPTED, HandoffState.DECLINED},
                                    self.settings.handoff_accept_timeout)
        if answer is None:
            raise Failed(HandoffFailure.TIMEOUT)
        if answer.state is HandoffState.DECLINED:
            raise Failed(HandoffFailure.DECLINED, written=True)
        participant = await self._human_joins(handoff)
        return Human(participant, name, username)

    async def _human_joins(self, handoff: Handoff) -> rtc.RemoteParticipant:
        joined: asyncio.Future[rtc.RemoteParticipant] = \
            asyncio.get_running_loop().create_future()

        def connected(participant: rtc.RemoteParticipant) -> None:
            if participant.attributes.get(attributes.HANDOFF_ID) == handoff.id \
                    and not joined.done():
                joined.set_result(participant)

        self.ctx.room.on("participant_connected", connected)
        try:
            for participant in self.ctx.room.remote_participants.values():
                connected(participant)
            return await asyncio.wait_for(joined, self.settings.handoff_accept_timeout)
        except TimeoutError:
            raise Failed(HandoffFailure.TIMEOUT) from None
        finally:
            self.ctx.room.off("participant_connected", connected)

    async def _with_human(self, handoff: Handoff, human: Human) -> None:
        """Introduce the human and transcribe them until they hang up, from before the
        introduction (they may start talking over it); then the agent takes the visitor back,
        or the call ends, as the settings say."""
        gone = asyncio.Event()

        def left(participant: rtc.RemoteParticipant) -> None:
            if participant.identity == human.participant.identity:
                gone.set()

        async def heard(text: str) -> None:
            event = MessageEvent(role=Role.HUMAN, channel=self.channel, author=human.name,
                                 text=text)
            self.writeback.add(event)
            await self._remember(chat_item(event))

        self.ctx.room.on("participant_disconnected", left)
        scribe = asyncio.create_task(transcribe(self.ctx.room, human.participant,
                                                self.recognizer, self.voice_activity, heard),
                                     name="baton-human-transcript")
        try:
            await self._say(f"You're now speaking with {human.name} from our team.")
            await gone.wait()
        finally:
            self.ctx.room.off("participant_disconnected", left)
            scribe.cancel()
            await asyncio.gather(scribe, return_exceptions=True)
        handoff = await self.handoffs.get(handoff.id)
        stays = self.settings.after_human_leaves == "agent"
        back = Status.PHONE if self.channel is Channel.PHONE else Status.VOICE
        await self._write(steps.ended(handoff, call_status=back if stays else Status.CHAT),
                          handoff.human)
        await self._release(handoff)
        if stays:
            self.agent.scribe = None
            await self._say(f"{human.name} has left the call, and I'm back with you. Is there "
                            "anything else I can help with?")
        else:
            await self._say("Thank you for calling. Goodbye.")
            await self.ctx.api.room.delete_room(api.DeleteRoomRequest(room=self.ctx.room.name))

    async def _fail(self, handoff: Handoff, failure: Failed) -> None:
        current = await self.handoffs.get(handoff.id)
        if not failure.written:
            await self._write(steps.failed(current, failure.reason,
                                           sip_status=failure.sip_status), current.human)
        await self._release(current)
        self._count(current, failure.reason.value)
        self.agent.scribe = None
        logger.info("the handoff failed (%s); the agent has the conversation back",
                    failure.reason.value)
        await self._say(TAKE_BACK[failure.reason] + OFFER)

    async def _release(self, handoff: Handoff) -> None:
        """Let the human go and take the handoff off the desk."""
        with contextlib.suppress(StoreUnavailable):
            await self.desk.waiting_remove(handoff.id)
            if handoff.human and handoff.human != "phone":
                await self.desk.queue_remove(handoff.human, handoff.id)
                await self.desk.free(handoff.human, handoff.id)

    async def _card(self, handoff: Handoff) -> HandoffCard:
        events = await self.store.read(self.conversation_id)
        return await read_card(self.card_llm, events, identity=self.identity,
                               reason=handoff.reason)

    async def _signal(self, handoff: Handoff, states: set[HandoffState],
                      within: float | None) -> HandoffEvent | None:
        """The next event of this handoff in one of `states`, or None after `within` s."""
        async def next_one() -> HandoffEvent:
            while True:
                event = await self._signals.get()
                if event.handoff_id == handoff.id and event.state in states:
                    return event

        try:
            return await asyncio.wait_for(next_one(), within)
        except TimeoutError:
            return None

    async def _write(self, step: steps.HandoffStep, human: str) -> None:
        if await self.handoffs.take(self.conversation_id, step):
            await self.desk.publish(step.event.handoff_id, human, step.event.state)

    async def _say(self, text: str, *, to_chat: bool = True) -> None:
        handle = self.session.say(text, allow_interruptions=False, add_to_chat_ctx=to_chat)
        await handle.wait_for_playout()

    async def _scribe(self, message: llm.ChatMessage) -> None:
        """While a handoff runs the agent does not answer the visitor; their words are still
        written, and remembered for when the agent takes the conversation back."""
        self.writeback.add_item(message, channel=self.channel)
        await self._remember(message)

    async def _remember(self, item: llm.ChatItem) -> None:
        remembered = self.agent.chat_ctx.copy()
        remembered.items.append(item)
        await self.agent.update_chat_ctx(remembered)

    def _visitor(self) -> rtc.RemoteParticipant:
        assert self.visitor is not None
        return self.visitor

    def _count(self, handoff: Handoff, outcome: str) -> None:
        metrics.HANDOFFS.labels(handoff.trigger.value, outcome).inc()


def _wanted_outcome(wanted: asyncio.Future[None]) -> None:
    """Go on to connect, or fail as declined when the human hung up instead."""
    try:
        wanted.result()
    except HumanLeft:
        raise Failed(HandoffFailure.DECLINED) from None
