// The conversation log's events as the orchestrator's stream sends them (conversation/events.py).

export type Channel = "chat" | "voice" | "phone";
export type Role = "user" | "assistant" | "human" | "system";

interface Base {
  event_id: string;
  at: string;
}

export interface MessageEvent extends Base {
  kind: "message";
  role: Role;
  channel: Channel;
  author: string | null;
  text: string;
  interrupted: boolean;
}

export interface ToolCallEvent extends Base {
  kind: "tool_call";
  call_id: string;
  name: string;
  /** A JSON object, as text. */
  arguments: string;
  channel: Channel;
}

export interface ToolResultEvent extends Base {
  kind: "tool_result";
  call_id: string;
  name: string;
  output: string;
  is_error: boolean;
}

export interface ChannelSwitchEvent extends Base {
  kind: "channel_switch";
  from_channel: Channel | null;
  to_channel: Channel;
  trigger: string;
}

export interface VerificationEvent extends Base {
  kind: "verification";
  subject: string;
  method: string;
  verified_at: string;
}

export type HandoffState = "requested" | "offered" | "accepted" | "connecting" | "connected"
  | "ended" | "declined" | "failed";
export type HandoffFailure = "no_answer" | "busy" | "declined" | "timeout"
  | "no_human_available" | "caller_left" | "failed";

export interface HandoffEvent extends Base {
  kind: "handoff";
  handoff_id: string;
  state: HandoffState;
  trigger: "tool" | "keyword" | "api" | null;
  /** Why a person was asked for, in words (requested). */
  reason: string | null;
  failure: HandoffFailure | null;
  /** The human's display name. */
  human: string | null;
  sip_status: number | null;
  /** The handoff card (offered). */
  card: Record<string, unknown> | null;
}

export type AgentState = "waiting" | "joined" | "unavailable";

export interface AgentEvent extends Base {
  kind: "agent";
  state: AgentState;
}

export interface SuggestionEvent extends Base {
  kind: "suggestion";
  suggestion: "switch_to_voice";
  reason: string;
}

export type CallOutcome = "dialing" | "answered" | "busy" | "no_answer" | "declined"
  | "unreachable" | "failed" | "ended" | "transferred" | "transfer_failed";

export interface CallEvent extends Base {
  kind: "call";
  outcome: CallOutcome;
  sip_status: number | null;
  sip_reason: string | null;
  /** The last two digits of the number dialled. */
  number_ending: string | null;
}

export type LogEvent = MessageEvent | ToolCallEvent | ToolResultEvent | ChannelSwitchEvent
  | VerificationEvent | HandoffEvent | AgentEvent | SuggestionEvent | CallEvent;

/** An event and its position in the log (the stream's `id`). */
export interface Logged {
  seq: string;
  event: LogEvent;
}

/** Log positions ("<ms>-<n>") in log order. */
export function compareSeq(a: string, b: string): number {
  const [am, an] = a.split("-").map(Number);
  const [bm, bn] = b.split("-").map(Number);
  return am !== bm ? am - bm : an - bn;
}
