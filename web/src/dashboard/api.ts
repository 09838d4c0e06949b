// The orchestrator's API for human agents: sign-in (the session is an HttpOnly cookie the
// browser sends with every request of this origin), the queue's handoffs and the steps a human
// takes on one.

export interface Human {
  username: string;
  name: string;
}

export type HandoffState = "requested" | "offered" | "accepted" | "connecting" | "connected"
  | "ended" | "declined" | "failed";

export interface ToolFact {
  name: string;
  arguments: string;
  output: string;
}

export interface Card {
  summary: string;
  intent: string;
  sentiment: string;
  name: string;
  account_number: string;
  order_number: string;
  issue_type: string;
  escalation_reason: string;
  open_questions: string[];
  verified_identity: { subject: string; method: string; verified_at: string } | null;
  tool_results: ToolFact[];
}

export interface Handoff {
  id: string;
  conversation_id: string;
  state: HandoffState;
  trigger: "tool" | "keyword" | "api";
  reason: string;
  human_name: string;
  failure: string | null;
  card: Card | null;
  times: Record<string, string>;
}

export interface RoomSession {
  url: string;
  token: string;
  room: string;
  identity: string;
  handoff: Handoff;
}

/** Why a request failed, for the words the human reads: `code` is the orchestrator's error
 * type (`HandoffMoved`, ...), `status` 0 when the orchestrator could not be reached. */
export class DeskError extends Error {
  constructor(readonly status: number, readonly code: string, message: string,
              readonly retryAfter: number | null = null) {
    super(message);
  }

  get signedOut(): boolean {
    return this.status === 401;
  }
}

/** Remembered (not secret) so a fresh page asks for the session only when there may be one:
 * the session itself is an HttpOnly cookie the page cannot see. */
const SIGNED_IN_HINT = "baton.desk.signed-in";

export function maybeSignedIn(): boolean {
  return localStorage.getItem(SIGNED_IN_HINT) !== null;
}

export class DeskApi {
  async signIn(username: string, password: string): Promise<Human> {
    const human = await this.call("POST", "/v1/humans/sign-in", { username, password }) as Human;
    localStorage.setItem(SIGNED_IN_HINT, human.username);
    return { username: human.username, name: human.name };
  }

  async signOut(): Promise<void> {
    localStorage.removeItem(SIGNED_IN_HINT);
    await this.call("POST", "/v1/humans/sign-out");
  }

  forget(): void {
    localStorage.removeItem(SIGNED_IN_HINT);
  }

  async me(): Promise<Human> {
    return await this.call("GET", "/v1/humans/me") as Human;
  }

  async handoff(handoffId: string): Promise<Handoff> {
    return await this.call("GET", `/v1/handoffs/${encodeURIComponent(handoffId)}`) as Handoff;
  }

  async accept(handoffId: string): Promise<RoomSession> {
    return await this.call("POST", `/v1/handoffs/${encodeURIComponent(handoffId)}/accept`) as
      RoomSession;
  }

  async decline(handoffId: string): Promise<Handoff> {
    return await this.call("POST", `/v1/handoffs/${encodeURIComponent(handoffId)}/decline`) as
      Handoff;
  }

  async connect(handoffId: string): Promise<Handoff> {
    return await this.call("POST", `/v1/handoffs/${encodeURIComponent(handoffId)}/connect`) as
      Handoff;
  }

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(path, {
        method, credentials: "same-origin",
        headers: body === undefined ? { Accept: "application/json" }
          : { Accept: "application/json", "Content-Type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch {
      throw new DeskError(0, "", "the orchestrator cannot be reached");
    }
    if (response.status === 204) return null;
    if (!response.ok) {
      const detail = await response.json().catch(() => ({})) as
        { error?: string; message?: string };
      const retryAfter = Number(response.headers.get("Retry-After"));
      throw new DeskError(response.status, detail.error ?? "",
                          detail.message ?? `status ${response.status}`,
                          Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null);
    }
    return response.json();
  }
}
