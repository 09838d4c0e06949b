// The handoff card as the human reads it before and while they take the call: what the
// visitor needs, the facts stated, the verified identity and what the tools already fetched.
// Fields the conversation did not establish are shown as not known, never guessed.

import { h } from "../widget/dom";
import type { Card, Handoff } from "./api";

const UNKNOWN = "not stated";

function row(term: string, value: string): HTMLElement[] {
  return [h("dt", { text: term }),
          h("dd", { class: value ? "" : "desk-unknown", text: value || UNKNOWN })];
}

function toolFacts(card: Card): HTMLElement {
  if (!card.tool_results.length) return h("p", { class: "desk-unknown", text: "None yet." });
  return h("ul", { class: "desk-facts" }, ...card.tool_results.map((fact) =>
    h("li", {}, h("strong", { text: fact.name }), ` ${fact.arguments}: `,
      h("code", { text: fact.output }))));
}

export function renderCard(handoff: Handoff): HTMLElement {
  const card = handoff.card;
  if (!card) {
    return h("p", { class: "desk-unknown",
                    text: "The card is being prepared from the conversation…" });
  }
  const identity = card.verified_identity;
  const questions = card.open_questions.length
    ? h("ul", {}, ...card.open_questions.map((q) => h("li", { text: q })))
    : h("p", { class: "desk-unknown", text: "None." });
  return h("div", { class: "desk-card-body" },
    h("p", { class: "desk-summary", text: card.summary || "No summary." }),
    h("dl", {},
      ...row("Intent", card.intent),
      ...row("Why a person", card.escalation_reason || handoff.reason),
      ...row("Sentiment", card.sentiment === "unknown" ? "" : card.sentiment),
      ...row("Name", card.name),
      ...row("Account", card.account_number),
      ...row("Order", card.order_number),
      ...row("Issue", card.issue_type),
      ...row("Verified as", identity ? `${identity.subject} (${identity.method})` : "")),
    h("h4", { text: "Open questions" }), questions,
    h("h4", { text: "Already looked up" }), toolFacts(card));
}

/** A line for the queue: who and what, from the card when there is one. */
export function headline(handoff: Handoff): string {
  const card = handoff.card;
  const who = card?.name || "A visitor";
  const what = card?.intent || card?.escalation_reason || handoff.reason || "asked for a person";
  return `${who}: ${what}`;
}
