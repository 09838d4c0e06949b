// The dashboard for human agents, served by the orchestrator at /dashboard/: sign in, then the
// desk (queue, card, conversation and call); sign out. The session is an HttpOnly cookie.

import { DeskApi, DeskError, maybeSignedIn, type Human } from "./api";
import { Desk } from "./desk";
import { elements, type Elements } from "./view";

const api = new DeskApi();
let desk: Desk | null = null;

function signInWords(error: unknown): string {
  if (!(error instanceof DeskError)) return "Could not sign in: something went wrong.";
  if (error.status === 401) return "Wrong username or password.";
  if (error.status === 429) {
    const minutes = Math.ceil((error.retryAfter ?? 900) / 60);
    return `Too many sign-in attempts for this username. Try again in ${minutes} minutes.`;
  }
  if (error.status === 422) return "Enter your username and password.";
  if (error.status === 0) {
    return "The Baton service cannot be reached. Check your connection and try again.";
  }
  return `Could not sign in: ${error.message}.`;
}

function showSignIn(ui: Elements, why = ""): void {
  desk = null;
  ui.desk.hidden = true;
  ui.user.hidden = true;
  ui.signIn.hidden = false;
  ui.status.textContent = "";
  ui.alert.replaceChildren();
  ui.signInError.textContent = why;
  ui.password.value = "";
  ui.username.focus();
}

function showDesk(ui: Elements, human: Human): void {
  ui.signIn.hidden = true;
  ui.desk.hidden = false;
  ui.user.hidden = false;
  ui.name.textContent = human.name;
  desk = new Desk(ui, api, human, (why) => showSignIn(ui, why));
  desk.start();
  document.getElementById("queue-title")?.setAttribute("tabindex", "-1");
  document.getElementById("queue-title")?.focus();
}

async function showOffline(ui: Elements): Promise<void> {
  const config = await fetch("/dashboard/config").then((r) => r.json()).catch(() => ({})) as
    { offline_models?: boolean };
  ui.offline.hidden = !config.offline_models;
}

async function boot(): Promise<void> {
  const ui = elements();
  void showOffline(ui);
  ui.signInForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const submit = ui.signInForm.querySelector("button")!;
    submit.disabled = true;
    ui.signInError.textContent = "";
    api.signIn(ui.username.value.trim(), ui.password.value).then(
      (human) => showDesk(ui, human),
      (error: unknown) => {
        ui.signInError.textContent = signInWords(error);
        ui.password.select();
      }).finally(() => { submit.disabled = false; });
  });
  ui.signOut.addEventListener("click", async () => {
    await desk?.stop();
    await api.signOut().catch(() => undefined);
    showSignIn(ui, "You are signed out.");
  });
  if (!maybeSignedIn()) {
    showSignIn(ui);
    return;
  }
  try {
    showDesk(ui, await api.me());
  } catch (error) {
    api.forget();
    showSignIn(ui, error instanceof DeskError && error.signedOut
      ? "Your session has ended. Sign in again." : signInWords(error));
  }
}

void boot();
