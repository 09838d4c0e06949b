// The dashboard's elements (the markup is index.html) and the queue's list.

import { h } from "../widget/dom";
import type { Handoff } from "./api";
import { headline } from "./card";
import { stateWords } from "./words";

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the dashboard page has no #${id}`);
  return element as T;
}

export function elements() {
  return {
    status: byId<HTMLElement>("desk-status"),
    user: byId<HTMLElement>("desk-user"),
    name: byId<HTMLElement>("desk-name"),
    signOut: byId<HTMLButtonElement>("sign-out"),
    offline: byId<HTMLElement>("offline"),
    alert: byId<HTMLElement>("alert"),
    signIn: byId<HTMLElement>("sign-in"),
    signInForm: byId<HTMLFormElement>("sign-in-form"),
    username: byId<HTMLInputElement>("username"),
    password: byId<HTMLInputElement>("password"),
    signInError: byId<HTMLElement>("sign-in-error"),
    desk: byId<HTMLElement>("desk"),
    queue: byId<HTMLUListElement>("queue"),
    queueEmpty: byId<HTMLElement>("queue-empty"),
    nothingSelected: byId<HTMLElement>("nothing-selected"),
    call: byId<HTMLElement>("call"),
    callState: byId<HTMLElement>("call-state"),
    levelMine: byId<HTMLMeterElement>("level-mine"),
    levelAgent: byId<HTMLMeterElement>("level-agent"),
    levelVisitor: byId<HTMLMeterElement>("level-visitor"),
    accept: byId<HTMLButtonElement>("accept"),
    decline: byId<HTMLButtonElement>("decline"),
    connect: byId<HTMLButtonElement>("connect"),
    mute: byId<HTMLButtonElement>("mute"),
    hangUp: byId<HTMLButtonElement>("hang-up"),
    enableSound: byId<HTMLButtonElement>("enable-sound"),
    speakers: byId<HTMLElement>("speakers"),
    card: byId<HTMLElement>("card"),
    cardBody: byId<HTMLElement>("card-body"),
    conversation: byId<HTMLElement>("conversation"),
    threadState: byId<HTMLElement>("thread-state"),
    thread: byId<HTMLOListElement>("thread"),
  };
}

export type Elements = ReturnType<typeof elements>;

/** Seconds since the handoff was requested, as "2 min" or "35 s". */
export function waited(handoff: Handoff, now = Date.now()): string {
  const since = Date.parse(handoff.times.requested_at ?? handoff.times.offered_at ?? "");
  if (Number.isNaN(since)) return "";
  const seconds = Math.max(0, Math.round((now - since) / 1000));
  return seconds < 90 ? `${seconds} s` : `${Math.round(seconds / 60)} min`;
}

/** The queue as a list of buttons, each selecting its handoff. */
export function renderQueue(list: HTMLUListElement, handoffs: Handoff[], selected: string | null,
                            select: (id: string) => void): void {
  const hadFocus = list.contains(document.activeElement)
    ? (document.activeElement as HTMLElement).dataset.handoff : undefined;
  list.replaceChildren(...handoffs.map((handoff) => {
    const button = h("button", { type: "button", class: "desk-queue-item",
                                 "aria-current": handoff.id === selected ? "true" : false },
      h("span", { class: "desk-queue-who", text: headline(handoff) }),
      h("span", { class: "desk-queue-state", text: stateWords(handoff) }),
      h("span", { class: "desk-queue-wait",
                  text: waited(handoff) ? `asked ${waited(handoff)} ago` : "" }));
    button.dataset.handoff = handoff.id;
    button.addEventListener("click", () => select(handoff.id));
    return h("li", {}, button);
  }));
  if (hadFocus) {
    list.querySelector<HTMLElement>(`[data-handoff="${CSS.escape(hadFocus)}"]`)?.focus();
  }
}
