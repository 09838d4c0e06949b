// The conversation log, live: EventSource on the orchestrator's stream, resumed after the last
// event seen (Last-Event-ID, or `after` with a fresh token), so nothing is missed or repeated.

import type { Api } from "./api";
import { compareSeq, type LogEvent, type Logged } from "./events";

export type StreamState = "live" | "reconnecting" | "unreachable" | "gone";

const KINDS = ["message", "tool_call", "tool_result", "channel_switch", "verification",
               "handoff", "agent", "suggestion", "call"];
/** Failed attempts in a row after which the visitor is told the service is unreachable. */
const UNREACHABLE_AFTER = 3;

export class LogStream {
  private source: EventSource | null = null;
  private last: string | null = null;
  private failures = 0;
  private retry: number | undefined;

  constructor(private readonly api: Api, private readonly onEvent: (logged: Logged) => void,
              private readonly onState: (state: StreamState) => void) {}

  start(): void {
    void this.open(false);
  }

  /** Try again at once (the visitor asked). */
  reconnect(): void {
    this.close();
    this.failures = 0;
    void this.open(true);
  }

  close(): void {
    window.clearTimeout(this.retry);
    this.source?.close();
    this.source = null;
  }

  private async open(freshToken: boolean): Promise<void> {
    let url: string;
    try {
      if (freshToken) await this.api.refreshToken();
      url = await this.api.streamUrl(this.last);
    } catch {
      this.failed();
      return;
    }
    const source = new EventSource(url);
    this.source = source;
    for (const kind of KINDS) {
      source.addEventListener(kind, (message) => this.receive(message as MessageEvent<string>));
    }
    source.addEventListener("end", (message) => this.ended(message as MessageEvent<string>));
    source.onopen = () => {
      this.failures = 0;
      this.onState("live");
    };
    source.onerror = () => {
      if (source !== this.source) return;
      if (source.readyState === EventSource.CLOSED) {
        // Refused (an expired token, a 429) rather than cut: EventSource gives up by itself.
        this.source = null;
        this.failed();
      } else {
        this.failures += 1;
        this.onState(this.failures >= UNREACHABLE_AFTER ? "unreachable" : "reconnecting");
      }
    };
  }

  private receive(message: MessageEvent<string>): void {
    const seq = message.lastEventId;
    if (this.last !== null && compareSeq(seq, this.last) <= 0) return;
    this.last = seq;
    this.onEvent({ seq, event: JSON.parse(message.data) as LogEvent });
  }

  private ended(message: MessageEvent<string>): void {
    const { reason } = JSON.parse(message.data) as { reason: string };
    this.close();
    if (reason === "conversation_gone") {
      this.onState("gone");
    } else {
      void this.open(true);
    }
  }

  private failed(): void {
    this.failures += 1;
    this.onState(this.failures >= UNREACHABLE_AFTER ? "unreachable" : "reconnecting");
    const delay = Math.min(1000 * 2 ** this.failures, 15_000);
    this.retry = window.setTimeout(() => void this.open(true), delay);
  }
}
