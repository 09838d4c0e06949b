// The orchestrator's API as the widget uses it: its own conversation, with a widget token from
// the site's backend (the session URL), refreshed before it expires.

export interface Session {
  conversation_id: string;
  token: string;
  expires_at: string;
  [extra: string]: unknown;
}

export interface VoiceSession {
  url: string;
  token: string;
  room: string;
  identity: string;
}

export type Failure = "unreachable" | "refused" | "not_found" | "closed" | "busy" | "invalid";

/** Something the visitor may need to be told; `failure` says which words, `code` is the
 * orchestrator's error type (`DialOutDisabled`, ...) and `retryAfter` its Retry-After. */
export class ApiError extends Error {
  constructor(readonly failure: Failure, readonly status: number, message: string,
              readonly code = "", readonly retryAfter: number | null = null) {
    super(message);
  }
}

export type DialOutcome = "answered" | "busy" | "no_answer" | "declined" | "unreachable"
  | "failed";

export interface DialResult {
  outcome: DialOutcome;
  sip_status: number | null;
  sip_reason: string | null;
  number_ending: string;
  participant_identity: string | null;
}

const REFRESH_MARGIN_MS = 60_000;

/** The site's backend: creates or finds the visitor's conversation and mints its token. */
export class SessionSource {
  private current: Session | null = null;
  private pending: Promise<Session> | null = null;

  constructor(private readonly url: string, private readonly onSession: (s: Session) => void) {}

  /** A token valid for at least another minute. */
  async session(): Promise<Session> {
    const current = this.current;
    if (current && Date.parse(current.expires_at) - Date.now() > REFRESH_MARGIN_MS) {
      return current;
    }
    return this.refresh();
  }

  /** A new token, whatever the current one's expiry (it was refused). */
  refresh(): Promise<Session> {
    this.pending ??= this.fetchSession().finally(() => { this.pending = null; });
    return this.pending;
  }

  private async fetchSession(): Promise<Session> {
    let response: Response;
    try {
      response = await fetch(this.url, { method: "POST", credentials: "same-origin",
                                         headers: { Accept: "application/json" } });
    } catch {
      throw new ApiError("unreachable", 0, "the site's chat service cannot be reached");
    }
    if (!response.ok) {
      throw new ApiError(response.status >= 500 ? "busy" : "refused", response.status,
                         `the site's chat service answered ${response.status}`);
    }
    const session = await response.json() as Session;
    this.current = session;
    this.onSession(session);
    return session;
  }
}

export class Api {
  constructor(readonly base: string, private readonly sessions: SessionSource) {}

  async conversationId(): Promise<string> {
    return (await this.sessions.session()).conversation_id;
  }

  /** The visitor's typed message; `eventId` makes a retry store it once. */
  async postMessage(text: string, eventId: string): Promise<void> {
    await this.call("POST", "messages", { role: "user", text, event_id: eventId });
  }

  async switchToVoice(trigger: "visitor" | "agent"): Promise<VoiceSession> {
    return await this.call("POST", "voice", { trigger }) as VoiceSession;
  }

  /** Call the visitor's phone; answers once it is answered or the call failed. */
  async dialOut(phoneNumber: string): Promise<DialResult> {
    return await this.call("POST", "dial-out", { phone_number: phoneNumber,
                                                 trigger: "visitor" }) as DialResult;
  }

  /** Ask for a person in the call in progress; the log tells how it goes. */
  async requestHandoff(reason: string): Promise<void> {
    await this.call("POST", "handoffs", { reason });
  }

  /** The URL of the conversation's live stream after `after`, with a fresh token. */
  async streamUrl(after: string | null): Promise<string> {
    const session = await this.sessions.session();
    const query = new URLSearchParams({ token: session.token });
    if (after) query.set("after", after);
    return `${this.base}/v1/conversations/${encodeURIComponent(session.conversation_id)}` +
      `/stream?${query}`;
  }

  refreshToken(): Promise<Session> {
    return this.sessions.refresh();
  }

  private async call(method: string, route: string, body: unknown, retried = false,
  ): Promise<unknown> {
    const session = await this.sessions.session();
    const url = `${this.base}/v1/conversations/${encodeURIComponent(session.conversation_id)}` +
      `/${route}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: { Authorization: `Bearer ${session.token}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch {
      throw new ApiError("unreachable", 0, "the service cannot be reached");
    }
    if (response.status === 401 && !retried) {
      await this.sessions.refresh();
      return this.call(method, route, body, true);
    }
    if (!response.ok) {
      const detail = await response.json().catch(() => ({})) as
        { error?: string; message?: string; field?: string | null };
      // A 422's message starts with the field it names, which the visitor need not read.
      const message = (detail.message ?? `status ${response.status}`)
        .replace(detail.field ? `${detail.field}: ` : /^$/, "");
      const retryAfter = Number(response.headers.get("Retry-After"));
      throw new ApiError(failureOf(response.status), response.status, message,
                         detail.error ?? "",
                         Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null);
    }
    return response.json();
  }
}

function failureOf(status: number): Failure {
  if (status === 401 || status === 403) return "refused";
  if (status === 404) return "not_found";
  if (status === 409) return "closed";
  if (status === 422 || status === 413) return "invalid";
  return "busy";
}
