// What the visitor reads for each event of the log that is not a message. Calls (phone
// dial-out) and handoffs (to a person) are said here already, so the buttons that start them
// only need to be added.

import type {
  AgentEvent, CallEvent, ChannelSwitchEvent, HandoffEvent, HandoffFailure, MessageEvent, Role,
  SuggestionEvent,
} from "./events";

export const SPEAKER: Record<Role, string> = {
  user: "You",
  assistant: "Assistant",
  human: "Agent",
  system: "Notice",
};

export function speaker(event: MessageEvent): string {
  return event.role === "human" && event.author ? event.author : SPEAKER[event.role];
}

export function channelNote(event: MessageEvent): string {
  if (event.channel === "voice") return "in the call";
  if (event.channel === "phone") return "by phone";
  return "";
}

/** The line for a channel switch, or null for the ones the visitor need not read. */
export function switchWords(event: ChannelSwitchEvent): string | null {
  if (event.from_channel === null) return null; // a participant joining: the call line says it
  if (event.to_channel === "chat") {
    if (event.trigger === "no_agent") return null; // the agent event says why
    return event.from_channel === "phone" ? "Phone call ended." : "Voice call ended.";
  }
  if (event.to_channel === "phone") return "Phone call started.";
  return "Voice call started.";
}

export const AGENT_WORDS: Record<AgentEvent["state"], string> = {
  waiting: "Connecting you to an agent…",
  joined: "The assistant joined the call.",
  unavailable: "No agent is available right now. The call ended; you can keep typing or try again.",
};

export function suggestionWords(event: SuggestionEvent): string {
  const why = event.reason.trim();
  return why ? `The assistant suggests a voice call ${why.replace(/[.]$/, "")}.`
    : "The assistant suggests a voice call.";
}

const CALL_WORDS: Record<CallEvent["outcome"], string> = {
  dialing: "Calling your phone…",
  answered: "You answered the phone call.",
  busy: "Your line was busy, so the call did not go through.",
  no_answer: "The phone call was not answered.",
  declined: "The phone call was declined.",
  unreachable: "Your phone could not be reached (it may be switched off or out of signal).",
  failed: "The phone call could not be connected.",
  ended: "The phone call ended.",
  transferred: "Your phone call was transferred.",
  transfer_failed: "Your phone call could not be transferred.",
};

export function callWords(event: CallEvent): string {
  const words = CALL_WORDS[event.outcome];
  if (event.outcome === "dialing" && event.number_ending) {
    return `Calling your phone (the number ending ${event.number_ending})…`;
  }
  if (event.outcome === "failed" && event.sip_status) {
    const reason = event.sip_reason ? ` ${event.sip_reason}` : "";
    return `${words.replace(/\.$/, "")} (${event.sip_status}${reason}).`;
  }
  return words;
}

/** What a visitor is told when bringing in a person did not work, and what happens next. */
export const HANDOFF_FAILED: Record<HandoffFailure, string> = {
  no_answer: "Nobody from the team answered. The assistant carries on with you and can book " +
    "a callback.",
  busy: "The team's line was busy. The assistant carries on with you and can book a callback.",
  declined: "The team member could not take the call. The assistant carries on with you and " +
    "can book a callback.",
  timeout: "Nobody from the team answered in time. The assistant carries on with you and can " +
    "book a callback.",
  no_human_available: "Nobody from the team is free right now. The assistant carries on with " +
    "you and can book a callback.",
  caller_left: "You left the call before a team member joined.",
  failed: "Bringing in a person did not work. The assistant carries on with you and can book " +
    "a callback.",
};

export function handoffWords(event: HandoffEvent): string {
  const who = event.human ?? "A person from the team";
  switch (event.state) {
    case "requested": return "Asking for a person from the team to join…";
    case "offered": return "Waiting for a person from the team to answer…";
    case "accepted": return `${who} is joining; the assistant is briefing them. You will hear ` +
      "music meanwhile.";
    case "connecting": return `${who} is joining the call now…`;
    case "connected": return `You are now talking to ${event.human ?? "a person from the team"}.`;
    case "ended": return `${who} has left the call; the assistant is back with you.`;
    case "declined": return HANDOFF_FAILED.declined;
    case "failed": return HANDOFF_FAILED[event.failure ?? "failed"];
  }
}
