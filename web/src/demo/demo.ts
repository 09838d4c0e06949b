// The demo page's own behaviour: say when the stack answers with scripted models, and start a
// new conversation on request.

const offline = document.getElementById("offline");
document.addEventListener("baton:session", (event) => {
  const session = (event as CustomEvent<{ offline_models?: boolean }>).detail;
  if (offline) offline.hidden = !session.offline_models;
});

document.getElementById("new-conversation")?.addEventListener("click", async () => {
  await fetch("/demo/session", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify({ new: true }),
  });
  window.location.reload();
});
