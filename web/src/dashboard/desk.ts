// The signed-in human's desk: the live queue, the handoff they look at (its card and the
// conversation so far), and the call they take: accept (join in consult and hear the agent's
// briefing), connect (talk to the visitor), mute, hang up, or decline.

import { DeskApi, DeskError, type Handoff, type Human } from "./api";
import { HumanCall, type CallEnd } from "./call";
import { renderCard } from "./card";
import { QueueStream, type QueueState } from "./queue";
import { ConversationThread } from "./thread";
import { renderQueue, waited, type Elements } from "./view";
import { errorWords, FAILURE } from "./words";
import { h } from "../widget/dom";
import {
  MicrophoneError, openMicrophone, type MicrophoneProblem,
} from "../widget/microphone";
import type { LocalAudioTrack } from "livekit-client";

/** offered: looking at an offer; joining: accepted, entering the room; consult: hearing the
 * briefing; connecting: asked for the visitor; talking: with the visitor; left: off the call. */
type Phase = "none" | "joining" | "consult" | "connecting" | "talking" | "left";

const ACTIVE = new Set(["requested", "offered", "accepted", "connecting", "connected"]);

const MICROPHONE_WORDS: Record<MicrophoneProblem, string> = {
  refused: "Your microphone is blocked. Allow it for this site in the browser, then press " +
    "Try again. You can listen to the briefing meanwhile.",
  missing: "No microphone was found. Connect one, then press Try again.",
  busy: "Your microphone could not be started; another app may be using it. Try again.",
};

export class Desk {
  private readonly queued = new Map<string, Handoff>();
  private current: Handoff | null = null;
  private phase: Phase = "none";
  private call: HumanCall | null = null;
  private meterFrame = 0;
  private clock = 0;
  private readonly queueStream: QueueStream;
  private readonly thread: ConversationThread;

  constructor(private readonly ui: Elements, private readonly api: DeskApi, human: Human,
              private readonly signedOut: (why: string) => void) {
    this.queueStream = new QueueStream({
      queue: (handoffs) => this.replaceQueue(handoffs),
      handoff: (handoff) => this.update(handoff),
      state: (state) => this.queueState(state),
    }, async () => {
      try {
        await api.me();
        return true;
      } catch (error) {
        return !(error instanceof DeskError && error.signedOut);
      }
    });
    this.thread = new ConversationThread(ui.thread, human.name, (state) => {
      ui.threadState.textContent = state === "reconnecting" ? "Reconnecting…"
        : state === "gone" ? "The conversation is no longer available." : "";
    });
    ui.accept.addEventListener("click", () => void this.accept());
    ui.decline.addEventListener("click", () => void this.decline());
    ui.connect.addEventListener("click", () => void this.connect());
    ui.hangUp.addEventListener("click", () => void this.call?.hangUp());
    ui.mute.addEventListener("click", () => {
      const muted = ui.mute.getAttribute("aria-pressed") !== "true";
      ui.mute.setAttribute("aria-pressed", String(muted));
      void this.call?.setMuted(muted);
    });
    ui.enableSound.addEventListener("click", () => void this.call?.startAudio());
  }

  start(): void {
    this.ui.status.textContent = "Connecting to your queue…";
    this.queueStream.start();
    // The waiting times on the queue move on.
    this.clock = window.setInterval(() => this.renderQueue(), 5000);
  }

  async stop(): Promise<void> {
    window.clearInterval(this.clock);
    this.queueStream.stop();
    this.thread.close();
    await this.call?.hangUp();
  }

  private queueState(state: QueueState): void {
    if (state === "signed_out") {
      void this.stop();
      this.signedOut("Your session has ended. Sign in again to take calls.");
      return;
    }
    this.ui.status.textContent = state === "live" ? "Online: handoffs come to you"
      : "Reconnecting to your queue… (you are offline until it is back)";
  }

  private replaceQueue(handoffs: Handoff[]): void {
    this.queued.clear();
    for (const handoff of handoffs) this.queued.set(handoff.id, handoff);
    const current = this.current && this.queued.get(this.current.id);
    if (current) this.current = current;
    else if (this.current && ACTIVE.has(this.current.state)) void this.refresh(this.current.id);
    if (!this.current && handoffs.length) this.select(handoffs[0].id);
    this.renderQueue();
    this.render();
  }

  private update(handoff: Handoff): void {
    const known = this.queued.has(handoff.id);
    if (ACTIVE.has(handoff.state)) this.queued.set(handoff.id, handoff);
    else this.queued.delete(handoff.id);
    if (this.current?.id === handoff.id) {
      this.current = handoff;
      this.followUp(handoff);
    } else if (!known && handoff.state === "offered") {
      this.ui.status.textContent = `New handoff: ${handoff.card?.name || "a visitor"} is ` +
        "waiting for you.";
      if (!this.current || !ACTIVE.has(this.current.state)) this.select(handoff.id);
    }
    this.renderQueue();
    this.render();
  }

  /** The queue holds running handoffs only: one that ended while the stream was down is
   * asked for. */
  private async refresh(id: string): Promise<void> {
    try {
      const handoff = await this.api.handoff(id);
      if (this.current?.id === id) this.update(handoff);
    } catch (error) {
      if (error instanceof DeskError && error.signedOut) this.failed(error, "");
    }
  }

  /** The handoff in the call changed on the agent's side. */
  private followUp(handoff: Handoff): void {
    if (ACTIVE.has(handoff.state) || !this.call) return;
    // The visitor left, or the consult timed out: nothing left to hear in the room.
    void this.call.hangUp();
  }

  private select(id: string): void {
    const handoff = this.queued.get(id);
    if (!handoff || this.current?.id === id) return;
    if (this.call) {
      this.showAlert("Finish the call you are on before opening another handoff.");
      return;
    }
    this.current = handoff;
    this.phase = "none";
    this.thread.follow(handoff.id);
    this.renderQueue();
    this.render();
  }

  private async accept(): Promise<void> {
    const handoff = this.current;
    if (!handoff || this.call) return;
    this.clearAlert();
    this.phase = "joining";
    this.render();
    // Made during the click, so the browser lets the call's audio play.
    const audio = new AudioContext();
    void audio.resume();
    let mic: LocalAudioTrack | null = null;
    try {
      mic = await openMicrophone();
    } catch (error) {
      this.microphoneProblem(error);
    }
    let session;
    try {
      session = await this.api.accept(handoff.id);
    } catch (error) {
      mic?.stop();
      void audio.close();
      this.phase = "none";
      this.failed(error, "accept the handoff");
      return;
    }
    this.current = session.handoff;
    const call = new HumanCall(mic, audio, this.ui.speakers, {
      talking: () => {
        this.phase = "talking";
        this.render();
        this.ui.hangUp.focus();
      },
      ended: (why) => this.callEnded(why),
      audioBlocked: (blocked) => { this.ui.enableSound.hidden = !blocked; },
    });
    this.call = call;
    try {
      await call.join(session.url, session.token);
    } catch {
      this.call = null;
      await call.room.disconnect();
      this.phase = "left";
      this.showAlert("Could not join the call. The handoff will time out and the assistant " +
                     "keeps the visitor; accept the next one when it comes.");
      this.render();
      return;
    }
    this.phase = "consult";
    this.render();
    this.meter();
    this.ui.connect.focus();
  }

  private async decline(): Promise<void> {
    const handoff = this.current;
    if (!handoff) return;
    try {
      this.current = await this.api.decline(handoff.id);
      this.queued.delete(handoff.id);
      this.ui.status.textContent = "Declined: the assistant keeps the visitor.";
    } catch (error) {
      this.failed(error, "decline the handoff");
    }
    this.renderQueue();
    this.render();
    this.ui.queue.querySelector("button")?.focus();
  }

  private async connect(): Promise<void> {
    const handoff = this.current;
    const call = this.call;
    if (!handoff || !call || this.phase !== "consult") return;
    if (!call.hasMicrophone) {
      this.showAlert(MICROPHONE_WORDS.refused, "Try again", () => void this.retryMicrophone());
      return;
    }
    this.phase = "connecting";
    this.render();
    try {
      await call.connect(async () => { this.current = await this.api.connect(handoff.id); });
    } catch (error) {
      this.phase = "consult";
      this.failed(error, "connect to the visitor");
      this.render();
    }
  }

  private async retryMicrophone(): Promise<void> {
    try {
      const mic = await openMicrophone();
      this.call?.useMicrophone(mic);
      this.clearAlert();
    } catch (error) {
      this.microphoneProblem(error);
    }
  }

  private microphoneProblem(error: unknown): void {
    const problem = error instanceof MicrophoneError ? error.problem : "busy";
    this.showAlert(MICROPHONE_WORDS[problem], "Try again", () => void this.retryMicrophone());
  }

  private callEnded(why: CallEnd): void {
    this.call = null;
    cancelAnimationFrame(this.meterFrame);
    for (const meter of [this.ui.levelMine, this.ui.levelAgent, this.ui.levelVisitor]) {
      meter.value = 0;
    }
    this.ui.mute.setAttribute("aria-pressed", "false");
    this.phase = "left";
    if (why === "lost") {
      this.showAlert("Your connection to the call was lost. The assistant has the visitor " +
                     "back; it may offer them a callback.");
    }
    this.render();
    const next = this.ui.queue.querySelector<HTMLElement>("button");
    (next ?? this.ui.signOut).focus();
  }

  private failed(error: unknown, doing: string): void {
    if (error instanceof DeskError && error.signedOut) {
      void this.stop();
      this.signedOut("Your session has ended. Sign in again to take calls.");
      return;
    }
    this.showAlert(errorWords(error, doing));
  }

  private showAlert(words: string, action?: string, onAction?: () => void): void {
    const buttons: HTMLElement[] = [];
    if (action && onAction) {
      const button = h("button", { type: "button", class: "desk-button", text: action });
      button.addEventListener("click", onAction);
      buttons.push(button);
    }
    const dismiss = h("button", { type: "button", class: "desk-button", text: "Dismiss" });
    dismiss.addEventListener("click", () => this.clearAlert());
    this.ui.alert.replaceChildren(h("p", { text: words }), ...buttons, dismiss);
  }

  private clearAlert(): void {
    const hadFocus = this.ui.alert.contains(document.activeElement);
    this.ui.alert.replaceChildren();
    if (hadFocus) (this.ui.connect.hidden ? this.ui.signOut : this.ui.connect).focus();
  }

  private renderQueue(): void {
    const ui = this.ui;
    const handoffs = [...this.queued.values()];
    renderQueue(ui.queue, handoffs, this.current?.id ?? null, (id) => this.select(id));
    ui.queueEmpty.hidden = handoffs.length > 0;
    if (this.current?.state === "offered") this.ui.callState.textContent = this.callWords();
  }

  private render(): void {
    const ui = this.ui;
    const handoff = this.current;
    ui.nothingSelected.hidden = handoff !== null;
    ui.call.hidden = ui.card.hidden = ui.conversation.hidden = handoff === null;
    if (!handoff) return;
    ui.cardBody.replaceChildren(renderCard(handoff));
    const offered = handoff.state === "offered" && this.phase === "none";
    const inRoom = this.call !== null;
    ui.accept.hidden = ui.decline.hidden = !offered;
    ui.connect.hidden = !inRoom || this.phase === "talking";
    ui.connect.disabled = this.phase !== "consult";
    ui.connect.textContent = this.phase === "connecting" ? "Connecting…"
      : "Connect to the visitor";
    ui.mute.hidden = ui.hangUp.hidden = !inRoom;
    ui.callState.textContent = this.callWords();
    document.body.dataset.deskPhase = this.phase;
    document.body.dataset.handoffState = handoff.state;
  }

  private callWords(): string {
    const handoff = this.current;
    if (!handoff) return "";
    if (!ACTIVE.has(handoff.state)) {
      if (handoff.state === "ended") return "The call with you has ended; the assistant has " +
        "the visitor back.";
      if (handoff.state === "declined") return "Declined: the assistant keeps the visitor.";
      return `This handoff is closed: ${FAILURE[handoff.failure ?? "failed"]}. The ` +
        "assistant has the visitor back.";
    }
    switch (this.phase) {
      case "joining": return "Joining the call…";
      case "consult": return "In consult: the assistant is briefing you. The visitor hears " +
        "hold music and cannot hear you. Press Connect when you are ready.";
      case "connecting": return "Connecting you to the visitor…";
      case "talking": return "Connected: you and the visitor hear each other. The assistant " +
        "writes down what is said.";
      case "left": return "You left the call.";
      case "none": break;
    }
    if (handoff.state === "offered") {
      return `Waiting for you (asked ${waited(handoff)} ago). The visitor is on hold. Accept ` +
        "to join: the assistant briefs you first, and the visitor cannot hear you until you " +
        "connect.";
    }
    return "This handoff is yours, but you are not in its call.";
  }

  private meter(): void {
    const tick = (): void => {
      if (!this.call) return;
      const { mine, agent, visitor } = this.call.levels();
      this.ui.levelMine.value = mine;
      this.ui.levelAgent.value = agent;
      this.ui.levelVisitor.value = visitor;
      this.meterFrame = requestAnimationFrame(tick);
    };
    this.meterFrame = requestAnimationFrame(tick);
  }
}
