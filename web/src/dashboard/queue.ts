// The human's live queue: `/v1/handoffs/stream` (the session cookie goes with it). The whole
// queue comes first on every (re)connection, then one `handoff` event per change. While it is
// open the human counts as online, so it is reopened whenever it drops.

import type { Handoff } from "./api";

export type QueueState = "live" | "reconnecting" | "signed_out";

export interface QueueListener {
  queue(handoffs: Handoff[]): void;
  handoff(handoff: Handoff): void;
  state(state: QueueState): void;
}

const MAX_DELAY_MS = 15_000;

export class QueueStream {
  private source: EventSource | null = null;
  private retry: number | undefined;
  private failures = 0;
  private stopped = false;

  /** `stillSignedIn` tells a refused stream (the session expired) from an outage. */
  constructor(private readonly listener: QueueListener,
              private readonly stillSignedIn: () => Promise<boolean>) {}

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.retry);
    this.source?.close();
    this.source = null;
  }

  private open(): void {
    const source = new EventSource("/v1/handoffs/stream", { withCredentials: true });
    this.source = source;
    source.addEventListener("queue", (message) => {
      this.failures = 0;
      const { handoffs } = JSON.parse((message as MessageEvent<string>).data) as
        { handoffs: Handoff[] };
      this.listener.queue(handoffs);
      this.listener.state("live");
    });
    source.addEventListener("handoff", (message) => {
      this.listener.handoff(JSON.parse((message as MessageEvent<string>).data) as Handoff);
    });
    // The orchestrator lost Redis: start again (the whole queue comes first) after a pause.
    source.addEventListener("end", () => this.dropped(source));
    source.onerror = () => {
      if (source !== this.source) return;
      if (source.readyState === EventSource.CLOSED) this.dropped(source);
      else this.listener.state("reconnecting");
    };
  }

  private dropped(source: EventSource): void {
    if (source !== this.source || this.stopped) return;
    source.close();
    this.source = null;
    this.failures += 1;
    this.listener.state("reconnecting");
    const delay = Math.min(1000 * 2 ** this.failures, MAX_DELAY_MS);
    this.retry = window.setTimeout(() => void this.reopen(), delay);
  }

  private async reopen(): Promise<void> {
    if (this.stopped) return;
    if (!await this.stillSignedIn()) {
      this.listener.state("signed_out");
      return;
    }
    if (!this.stopped) this.open();
  }
}
