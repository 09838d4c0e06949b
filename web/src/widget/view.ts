// The widget's markup: header, thread, alerts, the call panel, a place for more panels, the
// action buttons and the composer. "Call me instead" and "Talk to a person" go into `panels`
// and `actions` (see `Widget.addAction` / `addPanel`).

import { h, uid } from "./dom";

export interface View {
  root: HTMLElement;
  status: HTMLElement;
  notice: HTMLElement;
  thread: HTMLOListElement;
  alert: HTMLElement;
  call: CallPanel;
  panels: HTMLElement;
  actions: HTMLElement;
  switchButton: HTMLButtonElement;
  form: HTMLFormElement;
  input: HTMLInputElement;
  sendButton: HTMLButtonElement;
}

export interface CallPanel {
  root: HTMLElement;
  agentState: HTMLElement;
  speaking: HTMLElement;
  agentLevel: HTMLMeterElement;
  humanRow: HTMLElement;
  humanLabel: HTMLElement;
  humanLevel: HTMLMeterElement;
  micLevel: HTMLMeterElement;
  microphone: HTMLSelectElement;
  mute: HTMLButtonElement;
  hangUp: HTMLButtonElement;
  enableSound: HTMLButtonElement;
  speakers: HTMLElement;
}

function meter(label: string): [HTMLElement, HTMLMeterElement, HTMLElement] {
  const id = uid("meter");
  const element = h("meter", { id, min: "0", max: "1", value: "0", low: "0.15", high: "0.6",
                               optimum: "0.4" });
  const text = h("label", { for: id, text: label });
  return [h("div", { class: "baton-meter" }, text, element), element, text];
}

function callPanel(): CallPanel {
  const [agentRow, agentLevel] = meter("Assistant's voice");
  const [micRow, micLevel] = meter("Your microphone");
  const [humanRow, humanLevel, humanLabel] = meter("Team member's voice");
  humanRow.hidden = true;
  const microphoneId = uid("mic");
  const microphone = h("select", { id: microphoneId });
  const mute = h("button", { type: "button", class: "baton-button", "aria-pressed": "false",
                             text: "Mute" });
  const hangUp = h("button", { type: "button", class: "baton-button baton-danger",
                               text: "Hang up" });
  const enableSound = h("button", { type: "button", class: "baton-button", hidden: true,
                                    text: "Turn on the sound" });
  const agentState = h("p", { class: "baton-agent-state", text: "Connecting the call…" });
  const speaking = h("p", { class: "baton-speaking", "aria-live": "off" });
  const speakers = h("div", { class: "baton-speakers", hidden: true });
  const root = h("section", { class: "baton-call", "aria-label": "Voice call", hidden: true },
    agentState, speaking,
    h("div", { class: "baton-meters" }, agentRow, humanRow, micRow),
    h("div", { class: "baton-device" }, h("label", { for: microphoneId, text: "Microphone" }),
      microphone),
    h("div", { class: "baton-call-buttons" }, mute, hangUp, enableSound),
    speakers);
  return { root, agentState, speaking, agentLevel, humanRow, humanLabel, humanLevel, micLevel,
           microphone, mute, hangUp, enableSound, speakers };
}

export function buildView(title: string): View {
  const titleId = uid("title");
  const inputId = uid("input");
  const status = h("p", { class: "baton-status", role: "status" });
  const notice = h("p", { class: "baton-notice", hidden: true });
  // A list announced as it grows; focusable so it scrolls from the keyboard.
  const thread = h("ol", { class: "baton-thread", "aria-live": "polite",
                           "aria-label": "Conversation", tabindex: "0" });
  const alert = h("div", { class: "baton-alert", role: "alert" });
  const call = callPanel();
  const panels = h("div", { class: "baton-panels" });
  const switchButton = h("button", { type: "button", class: "baton-button baton-primary",
                                     text: "Switch to voice" });
  const actions = h("div", { class: "baton-actions" }, switchButton);
  const input = h("input", { id: inputId, type: "text", autocomplete: "off",
                             placeholder: "Type a message", maxlength: "4000" });
  const sendButton = h("button", { type: "submit", class: "baton-button", text: "Send" });
  const form = h("form", { class: "baton-compose" },
    h("label", { for: inputId, class: "baton-visually-hidden", text: "Message" }), input,
    sendButton);
  const root = h("section", { class: "baton", "aria-labelledby": titleId },
    h("header", { class: "baton-header" }, h("h2", { id: titleId, text: title }), status, notice),
    thread, alert, call.root, panels, actions, form);
  return { root, status, notice, thread, alert, call, panels, actions, switchButton, form,
           input, sendButton };
}
