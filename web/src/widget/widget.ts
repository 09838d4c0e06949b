// The widget: the thread from the log, typing, and the switch to a browser voice call and back.

import { Api, ApiError, SessionSource, type Failure, type Session } from "./api";
import { VoiceCall, type CallEnd, type CallListener } from "./call";
import { h } from "./dom";
import type { Logged } from "./events";
import {
  MicrophoneError, microphones, openMicrophone, type MicrophoneProblem,
} from "./microphone";
import { PersonRequest } from "./person";
import { PhoneCallback } from "./phone";
import { LogStream, type StreamState } from "./stream";
import { Thread } from "./thread";
import { buildView, type View } from "./view";
import { AGENT_WORDS } from "./words";

export interface WidgetOptions {
  /** The orchestrator's base URL. */
  orchestrator: string;
  /** The site's backend route that returns `{conversation_id, token, expires_at}`. */
  sessionUrl: string;
  title?: string;
}

/** chat: typing; joining: asking for the microphone and connecting; call: in the call;
 * ending: hung up, until the log says the call is over (typed messages wait for it). */
type Phase = "chat" | "joining" | "call" | "ending";

const AGENT_STATE_WORDS: Record<string, string> = {
  initializing: "Assistant: getting ready…",
  listening: "Assistant: listening",
  thinking: "Assistant: thinking…",
  speaking: "Assistant: speaking",
  idle: "Assistant: listening",
};

const MICROPHONE_WORDS: Record<MicrophoneProblem, string> = {
  refused: "Microphone access was refused. To talk, allow the microphone for this site in " +
    "your browser, then try again. You can keep typing meanwhile.",
  missing: "No microphone was found. Connect one, then try again. You can keep typing meanwhile.",
  busy: "The microphone could not be started; another app may be using it. Try again, or " +
    "keep typing.",
};

const FAILURE_WORDS: Record<Failure, string> = {
  unreachable: "We could not reach the service. Check your connection, then try again.",
  busy: "The service is busy right now. Please try again in a moment.",
  refused: "This chat session has expired. Reload the page to continue.",
  not_found: "This conversation is no longer available. Reload the page to start again.",
  closed: "This conversation has ended.",
  invalid: "That message could not be sent.",
};

/** Meter level above which someone counts as speaking (about -40 dBFS). */
const SPEAKING_LEVEL = 0.33;
const ENDING_WAIT_MS = 8000;

/** Performance marks of a switch ("baton:switched", ...), for tuning in the browser's tools. */
function mark(step: string): void {
  performance.mark(`baton:${step}`);
}

function newEventId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export class Widget {
  readonly view: View;
  private readonly api: Api;
  private readonly thread: Thread;
  private readonly stream: LogStream;
  private phase: Phase = "chat";
  private call: VoiceCall | null = null;
  /** The call the log says is in progress (this browser's, another tab's, or a phone). */
  private callInLog: "voice" | "phone" | null = null;
  private readonly phone: PhoneCallback;
  private readonly person: PersonRequest;
  private chosenMicrophone: string | undefined;
  private humanName: string | null = null;
  private readonly startedAt = Date.now();
  /** Messages typed while joining or ending a call, sent once it is clear where to. */
  private held: { text: string; send: (intoCall: boolean) => void }[] = [];
  private endingTimer: number | undefined;
  private meterFrame = 0;
  private alertOwner: "call" | "stream" | null = null;

  constructor(private readonly container: HTMLElement, options: WidgetOptions) {
    this.view = buildView(options.title ?? "Chat with us");
    container.append(this.view.root);
    const sessions = new SessionSource(options.sessionUrl, (session: Session) =>
      container.dispatchEvent(new CustomEvent("baton:session", { detail: session,
                                                                 bubbles: true })));
    this.api = new Api(options.orchestrator, sessions);
    this.thread = new Thread(this.view.thread, () => void this.startCall("agent"));
    this.stream = new LogStream(this.api, (logged) => this.onLogged(logged),
                                (state) => this.onStream(state));
    this.phone = new PhoneCallback(this.api);
    this.person = new PersonRequest(this.api);
    this.addAction(this.phone.button);
    this.addAction(this.person.button);
    this.addPanel(this.phone.panel);
    this.addPanel(this.person.panel);
    this.wire();
    this.render();
  }

  start(): void {
    this.stream.start();
  }

  /** A button beside "Switch to voice" (for "Call me instead" and "Talk to a person"). */
  addAction(button: HTMLElement): void {
    this.view.actions.append(button);
  }

  /** A panel above the actions (a phone field, a handoff's progress). */
  addPanel(panel: HTMLElement): void {
    this.view.panels.append(panel);
  }

  private wire(): void {
    const { form, switchButton, call } = this.view;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.type();
    });
    switchButton.addEventListener("click", () => void this.startCall("visitor"));
    call.hangUp.addEventListener("click", () => void this.call?.hangUp());
    call.mute.addEventListener("click", () => {
      const muted = call.mute.getAttribute("aria-pressed") !== "true";
      call.mute.setAttribute("aria-pressed", String(muted));
      void this.call?.setMuted(muted);
    });
    call.microphone.addEventListener("change", () => {
      this.chosenMicrophone = call.microphone.value;
      void this.call?.useMicrophone(call.microphone.value);
    });
    call.enableSound.addEventListener("click", () => void this.call?.startAudio());
  }

  private type(): void {
    const text = this.view.input.value.trim();
    if (!text) return;
    this.view.input.value = "";
    if (this.phase === "call") {
      this.sendIntoCall(text);
      return;
    }
    const eventId = newEventId();
    let pending: ReturnType<Thread["sending"]> | null = null;
    const post = (): void => {
      pending ??= this.thread.sending(eventId, text);
      const shown = pending;
      this.api.postMessage(text, eventId).then(() => shown.sent(), (error: unknown) => {
        shown.failed(post);
        this.explain(error);
      });
    };
    if (this.phase === "chat") {
      post();
    } else {
      this.held.push({ text, send: (intoCall) => intoCall ? this.sendIntoCall(text) : post() });
    }
  }

  private sendIntoCall(text: string): void {
    this.thread.sentIntoCall(text);
    this.call?.send(text).catch(() =>
      this.showAlert("call", "Your message could not be sent into the call. Please say it, " +
                             "or type it again."));
  }

  private releaseHeld(intoCall: boolean): void {
    const held = this.held;
    this.held = [];
    for (const message of held) message.send(intoCall);
  }

  private async startCall(trigger: "visitor" | "agent"): Promise<void> {
    if (this.phase !== "chat") return;
    this.clearAlert("call");
    this.setPhase("joining");
    mark("switch-clicked");
    const retry = (): void => void this.startCall(trigger);
    // Made during the click, so the browser lets it play.
    const audio = new AudioContext();
    void audio.resume();
    let microphone;
    try {
      microphone = await openMicrophone(this.chosenMicrophone);
    } catch (error) {
      void audio.close();
      this.backToChat();
      this.explain(error, retry);
      return;
    }
    mark("microphone-open");
    let session;
    try {
      session = await this.api.switchToVoice(trigger);
    } catch (error) {
      microphone.stop();
      void audio.close();
      this.backToChat();
      this.explain(error, retry);
      return;
    }
    mark("switched");
    const call = new VoiceCall(microphone, audio, this.view.call.speakers, this.listener());
    this.call = call;
    try {
      await call.join(session);
    } catch {
      this.call = null;
      await call.room.disconnect();
      microphone.stop();
      void audio.close();
      this.backToChat();
      this.showAlert("call", "The call could not be connected.", "Try again", retry);
      return;
    }
    mark("joined");
    this.setPhase("call");
    this.releaseHeld(true);
    void this.listMicrophones(microphone.mediaStreamTrack.getSettings().deviceId);
    this.meter();
    this.view.call.hangUp.focus();
  }

  private listener(): CallListener {
    const panel = this.view.call;
    return {
      agentPresent: (present) => {
        if (present) mark("agent-present");
        else panel.agentState.textContent = "Connecting you to the assistant…";
      },
      agentState: (state) => {
        panel.agentState.textContent = AGENT_STATE_WORDS[state] ?? "";
      },
      caption: (caption) => this.thread.caption(caption),
      audioBlocked: (blocked) => { panel.enableSound.hidden = !blocked; },
      humanHeard: (name) => {
        this.humanName = name;
        panel.humanRow.hidden = name === null;
        if (name) panel.humanLabel.textContent = `${name}'s voice`;
      },
      ended: (why) => this.callEnded(why),
    };
  }

  private callEnded(why: CallEnd): void {
    this.call = null;
    cancelAnimationFrame(this.meterFrame);
    this.thread.clearCaptions();
    if (why === "lost") {
      this.showAlert("call", "The call was cut off.", "Call again",
                     () => void this.startCall("visitor"));
    }
    if (this.callInLog) {
      this.setPhase("ending");
      // The log says when the call is over; if that word never comes, typing goes on anyway.
      this.endingTimer = window.setTimeout(() => this.backToChat(), ENDING_WAIT_MS);
    } else {
      this.backToChat();
    }
  }

  private backToChat(): void {
    window.clearTimeout(this.endingTimer);
    this.setPhase("chat");
    this.releaseHeld(false);
  }

  private onLogged(logged: Logged): void {
    const event = logged.event;
    // An agent waits in the room while a phone rings; the visitor hears of the call instead.
    const unheard = event.kind === "agent" && event.state === "joined" && !this.callInLog;
    if (!unheard) this.thread.add(logged);
    if (event.kind === "channel_switch") {
      if (event.to_channel === "chat") {
        this.callInLog = null;
        if (this.phase === "ending") this.backToChat();
      } else if (event.from_channel !== null) {
        this.callInLog = event.to_channel;
      }
      this.render();
    } else if (event.kind === "handoff") {
      this.person.handoff(event);
    } else if (event.kind === "agent" && event.state === "unavailable" &&
               Date.parse(event.at) > this.startedAt - 10_000) {
      this.showAlert("call", AGENT_WORDS.unavailable, "Try the call again",
                     () => void this.startCall("visitor"));
    }
  }

  private onStream(state: StreamState): void {
    const status = this.view.status;
    if (state === "live") {
      status.textContent = "";
      this.clearAlert("stream");
    } else if (state === "reconnecting") {
      status.textContent = "Reconnecting…";
    } else if (state === "unreachable") {
      status.textContent = "Offline";
      this.showAlert("stream", "We can't reach the chat service right now. We keep trying; " +
                               "your conversation is safe.", "Retry now",
                     () => this.stream.reconnect());
    } else {
      status.textContent = "";
      this.showAlert("stream", FAILURE_WORDS.not_found, "Reload",
                     () => window.location.reload());
    }
  }

  private explain(error: unknown, retry?: () => void): void {
    if (error instanceof MicrophoneError) {
      this.showAlert("call", MICROPHONE_WORDS[error.problem], "Try again", retry);
    } else if (error instanceof ApiError) {
      const retryable = error.failure === "unreachable" || error.failure === "busy";
      this.showAlert("call", FAILURE_WORDS[error.failure], retryable ? "Try again" : undefined,
                     retryable ? retry : undefined);
    } else {
      this.showAlert("call", "Something went wrong.", retry ? "Try again" : undefined, retry);
    }
  }

  private showAlert(owner: "call" | "stream", words: string, action?: string,
                    onAction?: () => void): void {
    this.alertOwner = owner;
    const alert = this.view.alert;
    const dismiss = h("button", { type: "button", class: "baton-link", text: "Dismiss" });
    dismiss.addEventListener("click", () => this.clearAlert(owner, true));
    const buttons = h("div", { class: "baton-alert-buttons" });
    if (action && onAction) {
      const button = h("button", { type: "button", class: "baton-button", text: action });
      button.addEventListener("click", () => {
        this.clearAlert(owner, true);
        onAction();
      });
      buttons.append(button);
    }
    buttons.append(dismiss);
    alert.replaceChildren(h("p", { text: words }), buttons);
    alert.classList.add("baton-alert-shown");
  }

  private clearAlert(owner: "call" | "stream", refocus = false): void {
    if (this.alertOwner !== owner) return;
    const hadFocus = this.view.alert.contains(document.activeElement);
    this.alertOwner = null;
    this.view.alert.replaceChildren();
    this.view.alert.classList.remove("baton-alert-shown");
    if (refocus && hadFocus) this.view.input.focus();
  }

  private setPhase(phase: Phase): void {
    this.phase = phase;
    this.render();
  }

  private render(): void {
    const { switchButton, call, status } = this.view;
    const inCall = this.phase === "call";
    if (call.root.contains(document.activeElement) && !inCall) switchButton.focus();
    const onPhone = this.callInLog === "phone";
    call.root.hidden = !inCall;
    switchButton.hidden = inCall || onPhone;
    switchButton.disabled = this.phase !== "chat";
    this.phone.setAvailable(this.phase === "chat" && this.callInLog === null);
    this.person.setInCall(inCall || this.callInLog !== null);
    switchButton.textContent = {
      chat: this.callInLog ? "Join the call" : "Switch to voice",
      joining: "Connecting…",
      call: "Switch to voice",
      ending: "Ending the call…",
    }[this.phase];
    this.thread.enableOffers(this.phase === "chat");
    if (this.phase === "joining") status.textContent = "Starting the call…";
    else if (onPhone) status.textContent = "On the phone";
    else if (status.textContent === "Starting the call…" || status.textContent === "On the phone") {
      status.textContent = "";
    }
    if (!inCall) {
      call.mute.setAttribute("aria-pressed", "false");
      call.agentState.textContent = "Connecting the call…";
      call.speaking.textContent = "";
      call.agentLevel.value = 0;
      call.humanLevel.value = 0;
      call.humanRow.hidden = true;
      call.micLevel.value = 0;
    }
    this.container.dataset.batonPhase = this.phase;
  }

  private async listMicrophones(current: string | undefined): Promise<void> {
    const select = this.view.call.microphone;
    const devices = await microphones().catch(() => [] as MediaDeviceInfo[]);
    select.replaceChildren(...devices.map((device, index) => h("option", {
      value: device.deviceId, text: device.label || `Microphone ${index + 1}`,
      selected: device.deviceId === current,
    })));
  }

  private meter(): void {
    const panel = this.view.call;
    const tick = (): void => {
      if (!this.call) return;
      const { agent, human, visitor } = this.call.levels();
      panel.agentLevel.value = agent;
      panel.humanLevel.value = human;
      panel.micLevel.value = visitor;
      const who = [agent > SPEAKING_LEVEL && "the assistant",
                   human > SPEAKING_LEVEL && this.humanName, visitor > SPEAKING_LEVEL && "you"]
        .filter(Boolean);
      panel.speaking.textContent = who.length ? `Speaking now: ${who.join(" and ")}` : "";
      this.meterFrame = requestAnimationFrame(tick);
    };
    this.meterFrame = requestAnimationFrame(tick);
  }
}
