// Refresh each [data-refresh] section in place every data-every seconds (no full reload).
// A section is left alone while it is in use (focus inside, or a confirmation open), and a
// 401 means the session ended: reload, which lands on the sign-in page.
"use strict";
document.querySelectorAll("[data-refresh]").forEach((section) => {
  const every = 1000 * Number(section.dataset.every || 10);
  setInterval(async () => {
    if (document.hidden || section.contains(document.activeElement) || section.querySelector("details[open]")) return;
    try {
      const response = await fetch(section.dataset.refresh, { headers: { "x-fragment": "1" }, cache: "no-store" });
      if (response.status === 401) { location.reload(); return; }
      if (response.ok) section.innerHTML = await response.text();
    } catch (_) { /* offline for a moment: keep the last numbers */ }
  }, every);
});
