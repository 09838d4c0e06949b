// What the human agent reads: the conversation's events from the team's side (who said what
// on which channel, what the tools returned, how calls and handoffs went), the states of their
// queue, and the errors they can meet.

import type {
  CallEvent, ChannelSwitchEvent, HandoffEvent, MessageEvent, ToolCallEvent, ToolResultEvent,
} from "../widget/events";
import type { Handoff } from "./api";
import { DeskError } from "./api";

export function speakerOf(event: MessageEvent, me: string): string {
  switch (event.role) {
    case "user": return "Visitor";
    case "assistant": return "Assistant";
    case "human": return event.author === me ? `${me} (you)` : event.author ?? "Team member";
    case "system": return "Notice";
  }
}

export const CHANNEL: Record<MessageEvent["channel"], string> = {
  chat: "chat", voice: "voice", phone: "phone",
};

export function switchWords(event: ChannelSwitchEvent): string | null {
  if (event.from_channel === null) return null;
  const to = { chat: "back to chat", voice: "a browser voice call", phone: "a phone call" };
  return `Moved to ${to[event.to_channel]} (${event.trigger.replace(/_/g, " ")}).`;
}

export function toolCallWords(event: ToolCallEvent): string {
  return `Tool ${event.name} called with ${compact(event.arguments)}`;
}

export function toolResultWords(event: ToolResultEvent): string {
  return `${event.is_error ? "Tool error from" : "Tool result of"} ${event.name}: ` +
    compact(event.output);
}

function compact(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return text;
  }
}

const CALL: Record<CallEvent["outcome"], string> = {
  dialing: "Dialling the visitor's phone",
  answered: "The visitor answered the phone call.",
  busy: "The visitor's line was busy.",
  no_answer: "The visitor did not answer the phone call.",
  declined: "The visitor declined the phone call.",
  unreachable: "The visitor's phone could not be reached.",
  failed: "The phone call to the visitor failed.",
  ended: "The phone call ended.",
  transferred: "The phone call was transferred.",
  transfer_failed: "The phone call could not be transferred.",
};

export function callWords(event: CallEvent): string {
  let words = CALL[event.outcome];
  if (event.outcome === "dialing") {
    words += event.number_ending ? ` (the number ending ${event.number_ending})…` : "…";
  }
  if (event.sip_status && event.outcome !== "answered") {
    words += ` SIP ${event.sip_status}${event.sip_reason ? ` ${event.sip_reason}` : ""}.`;
  }
  return words;
}

export const FAILURE: Record<string, string> = {
  no_answer: "nobody answered",
  busy: "the line was busy",
  declined: "it was declined",
  timeout: "nobody took it in time",
  no_human_available: "nobody was available",
  caller_left: "the visitor left the call",
  failed: "something went wrong",
};

export function handoffEventWords(event: HandoffEvent): string {
  const who = event.human ?? "a team member";
  switch (event.state) {
    case "requested":
      return `A person was asked for (${event.trigger ?? "api"})` +
        (event.reason ? `: ${event.reason}` : ".");
    case "offered": return `Offered to ${who}.`;
    case "accepted": return `${who} accepted and is being briefed.`;
    case "connecting": return `${who} asked to talk to the visitor.`;
    case "connected": return `${who} and the visitor are talking.`;
    case "ended": return `${who} left the call.`;
    case "declined": return `${who} declined the handoff.`;
    case "failed": return `The handoff failed: ${FAILURE[event.failure ?? "failed"]}.`;
  }
}

/** The state of a handoff on the human's queue, in words. */
export function stateWords(handoff: Handoff): string {
  switch (handoff.state) {
    case "requested": return "Being prepared";
    case "offered": return "Waiting for you to accept";
    case "accepted": return "Accepted: in consult";
    case "connecting": return "Connecting you to the visitor";
    case "connected": return "Talking to the visitor";
    case "ended": return "Ended";
    case "declined": return "Declined";
    case "failed": return `Closed: ${FAILURE[handoff.failure ?? "failed"]}`;
  }
}

/** The words for a request the orchestrator refused, with what to do. */
export function errorWords(error: unknown, doing: string): string {
  if (!(error instanceof DeskError)) return `Could not ${doing}: something went wrong.`;
  if (error.status === 0) {
    return `Could not ${doing}: the Baton service cannot be reached. Check your connection ` +
      "and try again.";
  }
  if (error.code === "HandoffMoved") {
    return `Could not ${doing}: the handoff has moved on (${error.message}).`;
  }
  if (error.code === "HandoffNotFound") {
    return `Could not ${doing}: this handoff is no longer yours.`;
  }
  if (error.status === 401) return "Your session has ended. Sign in again.";
  if (error.status === 429) {
    const wait = error.retryAfter ? ` in ${Math.ceil(error.retryAfter / 60)} minutes` : " later";
    return `Too many tries. Try again${wait}.`;
  }
  if (error.status >= 500) {
    return `Could not ${doing}: the service is having trouble (${error.message}). Try again ` +
      "in a moment.";
  }
  return `Could not ${doing}: ${error.message}.`;
}
