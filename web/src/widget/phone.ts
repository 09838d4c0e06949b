// "Call me instead": the visitor's number, posted to `/dial-out`, with the call's progress and
// its typed outcome said in words, and what to do next. The thread shows the same call from the
// log; this panel is where the visitor acts on it.

import { ApiError, type Api, type DialOutcome, type DialResult } from "./api";
import { h, uid } from "./dom";

const OUTCOME_WORDS: Record<DialOutcome, string> = {
  answered: "You answered: the assistant is talking to you on the phone. What you both say " +
    "appears here. Hang up the phone to end the call, then keep typing if you like.",
  busy: "Your line was busy, so the call did not go through. Try again when it is free, or " +
    "enter another number.",
  no_answer: "Nobody answered the phone. Check the number and try again, or keep typing here.",
  declined: "The call was declined. If that was not you, check the number and try again.",
  unreachable: "Your phone could not be reached: it may be switched off or out of signal. " +
    "Try again later, or enter another number.",
  failed: "The call could not be connected. Please try again in a moment, or keep typing here.",
};

/** In words, with what to do, for a request the orchestrator refused. */
export function dialErrorWords(error: unknown): string {
  if (!(error instanceof ApiError)) return "Something went wrong. Please try again.";
  switch (error.code) {
    case "InvalidInput":
      return `That number cannot be called: ${error.message}. Enter it with + and the ` +
        "country code, for example +1 202 555 0100.";
    case "DialOutDisabled":
      return "Calls to phones are not available here right now. Keep typing, or use Switch " +
        "to voice if you have a microphone.";
    case "CallInProgress":
      return "A call is already in progress or being dialled for this conversation. Wait " +
        "for it to end, then try again.";
    case "TooManyDialAttempts":
      return "Too many calls were asked for in a short time. " +
        `Try again in ${waitWords(error.retryAfter)}, or keep typing here.`;
    case "ConversationClosed":
      return "This conversation has ended. Reload the page to start a new one.";
    default:
      break;
  }
  if (error.failure === "unreachable") {
    return "We could not reach the service. Check your connection, then try again.";
  }
  if (error.failure === "refused") return "This chat session has expired. Reload the page.";
  return "The call could not be placed right now. Please try again in a moment.";
}

function waitWords(seconds: number | null): string {
  if (seconds === null) return "a few minutes";
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} seconds`;
  return `${Math.round(seconds / 60)} minutes`;
}

export function outcomeWords(result: DialResult): string {
  const words = OUTCOME_WORDS[result.outcome];
  if (result.outcome === "failed" && result.sip_status) {
    const reason = result.sip_reason ? ` ${result.sip_reason}` : "";
    return `${words} (Status ${result.sip_status}${reason}.)`;
  }
  return words;
}

/** The "Call me instead" button and the panel it opens. */
export class PhoneCallback {
  readonly button: HTMLButtonElement;
  readonly panel: HTMLElement;
  private readonly form: HTMLFormElement;
  private readonly input: HTMLInputElement;
  private readonly call: HTMLButtonElement;
  private readonly progress: HTMLElement;
  private available = true;
  private dialling = false;

  constructor(private readonly api: Api) {
    const inputId = uid("phone");
    const hintId = uid("phone-hint");
    this.button = h("button", { type: "button", class: "baton-button",
                                "aria-expanded": "false", text: "Call me instead" });
    this.input = h("input", { id: inputId, type: "tel", autocomplete: "tel", inputmode: "tel",
                              required: true, maxlength: "32", placeholder: "+1 202 555 0100",
                              "aria-describedby": hintId });
    this.call = h("button", { type: "submit", class: "baton-button baton-primary",
                              text: "Call me" });
    const close = h("button", { type: "button", class: "baton-button", text: "Close" });
    this.progress = h("p", { class: "baton-phone-progress", role: "status" });
    this.form = h("form", { class: "baton-phone-form" },
      h("label", { for: inputId, text: "Your phone number" }),
      h("p", { id: hintId, class: "baton-hint",
               text: "International format: + and the country code, then the number." }),
      h("div", { class: "baton-phone-row" }, this.input, this.call, close));
    this.panel = h("section", { class: "baton-phone", "aria-label": "Call me instead",
                                hidden: true }, this.form, this.progress);
    this.button.addEventListener("click", () => this.toggle());
    close.addEventListener("click", () => this.hide(true));
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !this.dialling) this.hide(true);
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.dial();
    });
  }

  /** Whether a call may be asked for now (no call in progress or starting). */
  setAvailable(available: boolean): void {
    const was = this.available;
    this.available = available;
    this.button.hidden = !available && !this.dialling;
    this.button.disabled = this.dialling;
    const done = this.panel.classList.contains("baton-phone-done");
    // An answered call's words stay while it lasts; once it is over they are stale.
    if (!this.panel.hidden && !this.dialling &&
        ((!available && !done) || (available && !was && done))) {
      this.hide(false);
    }
  }

  private toggle(): void {
    if (this.panel.hidden) this.show();
    else this.hide(true);
  }

  private show(): void {
    this.panel.hidden = false;
    this.panel.classList.remove("baton-phone-done");
    this.form.hidden = false;
    this.progress.textContent = "";
    this.button.setAttribute("aria-expanded", "true");
    this.input.focus();
  }

  private hide(refocus: boolean): void {
    const hadFocus = this.panel.contains(document.activeElement);
    this.panel.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
    if (refocus && hadFocus && !this.button.hidden) this.button.focus();
  }

  private async dial(): Promise<void> {
    const number = this.input.value.trim();
    if (!number || this.dialling || !this.available) return;
    this.setDialling(true);
    this.progress.textContent = "Calling your phone… Answer it when it rings.";
    this.panel.dataset.batonOutcome = "dialing";
    try {
      const result = await this.api.dialOut(number);
      this.progress.textContent = outcomeWords(result);
      this.panel.dataset.batonOutcome = result.outcome;
      if (result.outcome === "answered") {
        this.form.hidden = true;
        this.panel.classList.add("baton-phone-done");
      }
    } catch (error) {
      this.progress.textContent = dialErrorWords(error);
      this.panel.dataset.batonOutcome = "error";
    } finally {
      this.setDialling(false);
    }
    if (!this.form.hidden) this.input.focus();
  }

  private setDialling(dialling: boolean): void {
    this.dialling = dialling;
    this.input.disabled = dialling;
    this.call.disabled = dialling;
    this.call.textContent = dialling ? "Calling…" : "Call me";
    this.setAvailable(this.available);
  }
}
