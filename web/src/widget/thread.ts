// The thread: the log's events in order, each in words, followed by what is not in the log
// yet (messages being sent, words being spoken), which the log's own events then replace.

import { h } from "./dom";
import type { Logged, MessageEvent, SuggestionEvent } from "./events";
import {
  AGENT_WORDS, callWords, channelNote, handoffWords, speaker, suggestionWords, switchWords,
} from "./words";
import type { Caption } from "./call";

const CALL_FAILED = new Set(["busy", "no_answer", "declined", "unreachable", "failed",
                             "transfer_failed"]);

export interface Pending {
  sent(): void;
  failed(retry: () => void): void;
}

export class Thread {
  private readonly pending = new Map<string, HTMLLIElement>();
  private readonly typedInCall: { text: string; item: HTMLLIElement }[] = [];
  private readonly captions = new Map<string, { caption: Caption; item: HTMLLIElement }>();
  private readonly offers: HTMLButtonElement[] = [];
  private offersEnabled = true;

  constructor(private readonly list: HTMLOListElement,
              private readonly takeOffer: (event: SuggestionEvent) => void) {}

  add({ seq, event }: Logged): void {
    switch (event.kind) {
      case "message": this.message(seq, event); break;
      case "channel_switch": this.note(seq, switchWords(event)); break;
      case "agent": this.note(seq, AGENT_WORDS[event.state], event.state === "unavailable"); break;
      case "suggestion": this.suggestion(seq, event); break;
      case "call": this.note(seq, callWords(event), CALL_FAILED.has(event.outcome)); break;
      case "handoff":
        this.note(seq, handoffWords(event),
                  event.state === "failed" || event.state === "declined");
        break;
      default: break; // tool calls and verifications are for the agents, not the visitor
    }
  }

  /** A typed message on its way to the log; the log's copy replaces it. */
  sending(eventId: string, text: string): Pending {
    const status = h("span", { class: "baton-via", text: "sending…" });
    const item = this.bubble("user", "You", status, text, "baton-pending");
    this.pending.set(eventId, item);
    this.appendLive(item);
    return {
      sent: () => { status.textContent = "sent"; },
      failed: (retry) => {
        status.textContent = "not sent";
        const button = h("button", { type: "button", class: "baton-link",
                                     text: "Send again" });
        button.addEventListener("click", () => {
          button.remove();
          status.textContent = "sending…";
          retry();
        });
        item.append(button);
      },
    };
  }

  /** Typed during a call: sent into the call, logged by the voice agent with its reply. */
  sentIntoCall(text: string): void {
    const item = this.bubble("user", "You", h("span", { class: "baton-via", text: "in the call" }),
                             text, "baton-pending");
    this.typedInCall.push({ text, item });
    this.appendLive(item);
  }

  caption(caption: Caption): void {
    const known = this.captions.get(caption.id);
    if (known) {
      known.caption = caption;
      known.item.querySelector("p")!.textContent = caption.text;
      return;
    }
    if (!caption.text.trim()) return;
    const who = caption.speaker === "agent" ? "Assistant" : "You";
    const item = this.bubble(caption.speaker === "agent" ? "assistant" : "user", who,
                             h("span", { class: "baton-via", text: "speaking…" }), caption.text,
                             "baton-caption");
    this.captions.set(caption.id, { caption, item });
    this.appendLive(item);
  }

  clearCaptions(): void {
    for (const { item } of this.captions.values()) item.remove();
    this.captions.clear();
  }

  enableOffers(enabled: boolean): void {
    this.offersEnabled = enabled;
    for (const button of this.offers) button.disabled = !enabled;
  }

  private message(seq: string, event: MessageEvent): void {
    this.pending.get(event.event_id)?.remove();
    this.pending.delete(event.event_id);
    if (event.channel !== "chat" && event.role === "user") {
      const typed = this.typedInCall.findIndex((t) => t.text === event.text);
      if (typed >= 0) this.typedInCall.splice(typed, 1)[0].item.remove();
    }
    if (event.channel !== "chat") this.dropCaptions(event);
    const note = channelNote(event);
    const item = this.bubble(event.role, speaker(event),
                             note ? h("span", { class: "baton-via", text: note }) : null,
                             event.text, event.interrupted ? "baton-interrupted" : "");
    item.dataset.seq = seq;
    this.appendLogged(item);
  }

  /** Captions the committed turn stands for: that speaker's finished ones, and any whose words
   * it begins with. */
  private dropCaptions(event: MessageEvent): void {
    const who = event.role === "user" ? "visitor" : "agent";
    for (const [id, { caption, item }] of this.captions) {
      if (caption.speaker === who &&
          (caption.final || event.text.startsWith(caption.text.trim()))) {
        item.remove();
        this.captions.delete(id);
      }
    }
  }

  private suggestion(seq: string, event: SuggestionEvent): void {
    const button = h("button", { type: "button", class: "baton-button baton-primary",
                                 text: "Switch to voice" });
    button.disabled = !this.offersEnabled;
    button.addEventListener("click", () => this.takeOffer(event));
    this.offers.push(button);
    const item = h("li", { class: "baton-note baton-offer" },
                   h("p", { text: suggestionWords(event) }), button);
    item.dataset.seq = seq;
    this.appendLogged(item);
  }

  private note(seq: string, words: string | null, warning = false): void {
    if (!words) return;
    const item = h("li", { class: warning ? "baton-note baton-warning" : "baton-note" },
                   h("p", { text: words }));
    item.dataset.seq = seq;
    this.appendLogged(item);
  }

  private bubble(role: string, who: string, via: HTMLElement | null, text: string,
                 extra: string): HTMLLIElement {
    return h("li", { class: `baton-message baton-from-${role} ${extra}`.trim() },
             h("div", { class: "baton-meta" }, h("span", { class: "baton-who", text: who }), via),
             h("p", { text }));
  }

  private appendLogged(item: HTMLLIElement): void {
    const firstLive = this.list.querySelector(":scope > .baton-pending, :scope > .baton-caption");
    this.list.insertBefore(item, firstLive);
    this.scroll();
  }

  private appendLive(item: HTMLLIElement): void {
    this.list.append(item);
    this.scroll();
  }

  private scroll(): void {
    this.list.scrollTop = this.list.scrollHeight;
  }
}
