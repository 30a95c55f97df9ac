// mattectl studio page: keeps the overview fresh, sends Retry without leaving the page, and
// remembers the backdrop behind the cutouts. Everything works without it (plain forms, links).
"use strict";

(function () {
  const body = document.body;
  const live = document.getElementById("live");
  const refreshMs = Math.max(1000, 1000 * Number(body.dataset.refreshS || 3));
  const csrf = document.querySelector('meta[name="csrf-token"]');

  async function refresh() {
    if (!live || !body.dataset.live || document.hidden) return;
    try {
      const response = await fetch(body.dataset.live, {credentials: "same-origin",
                                                        headers: {"Accept": "text/html"}});
      if (response.ok) {
        // Only the parts that change are swapped: the backdrop controls, and whatever the
        // person is using, stay as they are.
        const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
        fresh.querySelectorAll("[data-part][id]").forEach(function (part) {
          const old = document.getElementById(part.id);
          if (old && !old.contains(document.activeElement)) old.replaceWith(part);
        });
        body.dataset.updated = String(Date.now());
      }
    } catch (err) {
      // The daemon restarting: keep what is shown, try again at the next tick.
    }
  }

  document.addEventListener("submit", async function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-action")) return;
    event.preventDefault();
    const button = form.querySelector("button");
    if (button) { button.disabled = true; button.textContent = "Queued…"; }
    const headers = {"Accept": "application/json"};
    if (csrf) headers["X-CSRF-Token"] = csrf.content;
    try {
      const response = await fetch(form.action, {method: "POST", body: new FormData(form),
                                                 credentials: "same-origin", headers: headers});
      if (!response.ok && button) { button.textContent = "Refused (" + response.status + ")"; }
    } finally {
      if (document.activeElement) document.activeElement.blur();  // let its part refresh
      if (body.dataset.live) { await refresh(); } else { window.location.reload(); }
    }
  });

  function applyBackdrop() {
    const mode = localStorage.getItem("mattectl.backdrop") || "checker";
    const colour = localStorage.getItem("mattectl.colour") || "#3a7d44";
    document.documentElement.style.setProperty("--backdrop", colour);
    document.documentElement.classList.toggle("on-colour", mode === "colour");
    document.querySelectorAll('input[name="backdrop"]').forEach(function (input) {
      input.checked = input.value === mode;
    });
    const picker = document.getElementById("backdrop-colour");
    if (picker) picker.value = colour;
  }

  document.addEventListener("change", function (event) {
    const input = event.target;
    if (input.name === "backdrop") localStorage.setItem("mattectl.backdrop", input.value);
    if (input.id === "backdrop-colour") {
      localStorage.setItem("mattectl.colour", input.value);
      localStorage.setItem("mattectl.backdrop", "colour");
    }
    applyBackdrop();
  });

  applyBackdrop();
  if (live && body.dataset.live) setInterval(refresh, refreshMs);
})();
