// The embed: one script tag and a container.
//
//   <div id="baton-chat"></div>
//   <script src="https://baton.example/widget/widget.js" data-baton-session="/baton/session"
//           defer></script>
//
// `data-baton-session` is the site's own backend route (same origin, with the visitor's
// cookies): it creates or finds the visitor's conversation with its API key and answers
// `{conversation_id, token, expires_at}` from `POST /v1/conversations/{id}/widget-token`.
// Optional: `data-baton-container` (default "baton-chat"), `data-baton-title`,
// `data-baton-orchestrator` (default: where this script came from).

import { Widget } from "./widget";

declare global {
  interface Window {
    Baton?: { widget: Widget };
  }
}

const script = document.currentScript as HTMLScriptElement | null;

function stylesheet(href: string): void {
  if (document.querySelector(`link[href="${href}"]`)) return;
  document.head.append(Object.assign(document.createElement("link"),
                                     { rel: "stylesheet", href }));
}

function boot(): void {
  if (!script) return;
  const data = script.dataset;
  const container = document.getElementById(data.batonContainer ?? "baton-chat");
  if (!container || !data.batonSession) {
    console.warn("Baton widget: needs a container element and data-baton-session");
    return;
  }
  const orchestrator = (data.batonOrchestrator ?? new URL(script.src).origin).replace(/\/$/, "");
  stylesheet(`${orchestrator}/widget/widget.css`);
  const widget = new Widget(container, {
    orchestrator, sessionUrl: data.batonSession,
    ...(data.batonTitle ? { title: data.batonTitle } : {}),
  });
  window.Baton = { widget };
  widget.start();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
