// "Talk to a person" during a call: asks for a handoff, then shows where it stands from the
// log's handoff events (waiting, who is joining, connected, or what failed and what happens
// next), whoever asked for it (the visitor, the agent, a phrase the visitor said).

import { ApiError, type Api } from "./api";
import { h } from "./dom";
import type { HandoffEvent } from "./events";
import { handoffWords } from "./words";

const REASON = "The visitor asked to talk to a person.";
const DONE = new Set(["ended", "declined", "failed"]);

export function handoffErrorWords(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.code === "NotInCall") {
      return "A person can join during a call. Switch to voice first, then ask again.";
    }
    if (error.code === "HandoffInProgress") {
      return "A person from the team is already being brought in.";
    }
    if (error.failure === "unreachable") {
      return "We could not reach the service. Check your connection, then try again.";
    }
  }
  return "We could not ask for a person right now. Please try again in a moment.";
}

export class PersonRequest {
  readonly button: HTMLButtonElement;
  readonly panel: HTMLElement;
  private readonly words: HTMLElement;
  private inCall = false;
  private asking = false;
  /** The state of this call's latest handoff, if any. */
  private state: HandoffEvent["state"] | null = null;

  constructor(private readonly api: Api) {
    this.button = h("button", { type: "button", class: "baton-button", hidden: true,
                                text: "Talk to a person" });
    this.words = h("p", { role: "status" });
    this.panel = h("section", { class: "baton-person", "aria-label": "Talk to a person",
                                hidden: true }, this.words);
    this.button.addEventListener("click", () => void this.ask());
  }

  /** A call is in progress (browser or phone), or it ended: a new call starts afresh. */
  setInCall(inCall: boolean): void {
    if (inCall !== this.inCall) {
      this.state = null;
      this.panel.hidden = true;
      this.words.textContent = "";
    }
    this.inCall = inCall;
    this.render();
  }

  handoff(event: HandoffEvent): void {
    if (!this.inCall) return;
    this.state = event.state;
    this.panel.hidden = false;
    this.panel.dataset.batonState = event.state;
    this.panel.classList.toggle("baton-person-failed",
                                event.state === "failed" || event.state === "declined");
    this.words.textContent = handoffWords(event);
    this.render();
  }

  private async ask(): Promise<void> {
    if (this.asking) return;
    this.asking = true;
    this.render();
    this.panel.hidden = false;
    this.panel.classList.remove("baton-person-failed");
    this.panel.dataset.batonState = "asking";
    this.words.textContent = "Asking for a person from the team to join…";
    try {
      await this.api.requestHandoff(REASON);
    } catch (error) {
      this.panel.classList.add("baton-person-failed");
      this.panel.dataset.batonState = "error";
      this.words.textContent = handoffErrorWords(error);
    } finally {
      this.asking = false;
      this.render();
    }
  }

  private render(): void {
    const running = this.state !== null && !DONE.has(this.state);
    this.button.hidden = !this.inCall || this.state === "connected";
    this.button.disabled = this.asking || running;
  }
}
