// The handed-over conversation's whole thread, live: chat, voice and phone turns, tool calls
// and results, calls and handoffs, from `/v1/handoffs/{id}/stream` (from the start of the log,
// then each new event; the browser resumes after a cut with Last-Event-ID).

import { h } from "../widget/dom";
import { compareSeq, type LogEvent } from "../widget/events";
import { AGENT_WORDS, suggestionWords } from "../widget/words";
import {
  callWords, CHANNEL, handoffEventWords, speakerOf, switchWords, toolCallWords, toolResultWords,
} from "./words";

const KINDS = ["message", "tool_call", "tool_result", "channel_switch", "verification",
               "handoff", "agent", "suggestion", "call", "resolution", "csat"];

export type ThreadState = "live" | "reconnecting" | "gone";

export class ConversationThread {
  private source: EventSource | null = null;
  private last: string | null = null;

  constructor(private readonly list: HTMLOListElement, private readonly me: string,
              private readonly onState: (state: ThreadState) => void) {}

  /** Follow the handoff's conversation from its first event. */
  follow(handoffId: string): void {
    this.close();
    this.list.replaceChildren();
    this.last = null;
    const source = new EventSource(`/v1/handoffs/${encodeURIComponent(handoffId)}/stream`,
                                   { withCredentials: true });
    this.source = source;
    for (const kind of KINDS) {
      source.addEventListener(kind, (message) => this.receive(message as MessageEvent<string>));
    }
    source.addEventListener("end", () => {
      this.close();
      this.onState("gone");
    });
    source.onopen = () => this.onState("live");
    source.onerror = () => {
      if (source !== this.source) return;
      if (source.readyState === EventSource.CLOSED) {
        this.close();
        this.onState("gone");
      } else {
        this.onState("reconnecting");
      }
    };
  }

  close(): void {
    this.source?.close();
    this.source = null;
  }

  private receive(message: MessageEvent<string>): void {
    const seq = message.lastEventId;
    if (this.last !== null && compareSeq(seq, this.last) <= 0) return;
    this.last = seq;
    const item = this.render(JSON.parse(message.data) as LogEvent);
    if (!item) return;
    item.dataset.seq = seq;
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    this.list.append(item);
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
  }

  private render(event: LogEvent): HTMLLIElement | null {
    switch (event.kind) {
      case "message":
        return h("li", { class: `desk-message desk-from-${event.role}` },
          h("div", { class: "desk-meta" },
            h("span", { class: "desk-who", text: speakerOf(event, this.me) }),
            h("span", { class: "desk-channel", text: CHANNEL[event.channel] }),
            h("time", { datetime: event.at, text: clock(event.at) })),
          h("p", { text: event.interrupted ? `${event.text} …` : event.text }));
      case "tool_call": return this.note(toolCallWords(event), "desk-tool");
      case "tool_result":
        return this.note(toolResultWords(event), event.is_error ? "desk-tool desk-warning"
          : "desk-tool");
      case "channel_switch": {
        const words = switchWords(event);
        return words ? this.note(words) : null;
      }
      case "verification":
        return this.note(`Identity verified: ${event.subject} (${event.method}).`);
      case "handoff":
        return this.note(handoffEventWords(event),
                         event.state === "failed" ? "desk-warning" : "");
      case "agent": return this.note(AGENT_WORDS[event.state]);
      case "suggestion": return this.note(suggestionWords(event));
      case "call": return this.note(callWords(event));
      default: return this.other(event as unknown as Record<string, unknown>);
    }
  }

  /** Events the widget's types leave out (a resolution, a satisfaction score). */
  private other(event: Record<string, unknown>): HTMLLIElement | null {
    if (event.kind === "resolution") {
      return this.note(event.resolved ? "Marked resolved." : "Marked not resolved.");
    }
    if (event.kind === "csat") return this.note(`Satisfaction score: ${String(event.score)}/5.`);
    return null;
  }

  private note(words: string, extra = ""): HTMLLIElement {
    return h("li", { class: `desk-note ${extra}`.trim() }, h("p", { text: words }));
  }
}

function clock(at: string): string {
  const date = new Date(at);
  return Number.isNaN(date.getTime()) ? ""
    : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
