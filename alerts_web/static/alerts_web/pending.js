// Encounter page of a score whose factors are still being computed ("Explaining…"): the
// explainer stage adds them within about a second, so the page asks for itself again
// (backing off) until they are in, then shows them. A page nobody is typing on reloads
// whole (alert cards and intervention lists follow the factors); otherwise only the
// explanation is swapped in, so a half-written note is never lost. Past LATE_S the text
// says so plainly: factors that do not come mean the explanation service is not running.
(function () {
  "use strict";
  const FIRST_MS = 400;
  const CAP_MS = 2000; // a page render each: the factors are due within a second
  const LATE_S = 10;
  const box = document.getElementById("explanation");
  if (!box || box.dataset.pending !== "true") return;
  const computedAt = Date.parse(box.dataset.computedAt || "") || Date.now();
  let delay = FIRST_MS;

  function typing() {
    const active = document.activeElement;
    if (active && active.form && active.tagName !== "BUTTON") return true;
    return [...document.querySelectorAll("form textarea, form input:not([type=hidden])")].some((f) => f.value);
  }

  function markLate() {
    const note = document.getElementById("factors-pending");
    const seconds = Math.round((Date.now() - computedAt) / 1000);
    if (!note || seconds < LATE_S) return;
    note.classList.add("text-warning-emphasis");
    note.querySelector("span.text-body-secondary").textContent =
      "Still not explained after " + seconds + " s: the explanation service may be down. " +
      "The score and band stand; tell the on-call team if this persists.";
  }

  function later() {
    markLate();
    setTimeout(check, delay);
    delay = Math.min(CAP_MS, delay * 1.5);
  }

  function show(doc) {
    if (!typing()) { location.reload(); return; }
    const fresh = doc.getElementById("explanation");
    box.replaceWith(document.importNode(fresh, true));
    const data = JSON.parse(doc.getElementById("chart-data").textContent);
    if (window.readmitCharts) window.readmitCharts.drawFactors(document.getElementById("factor-chart"), data.factors);
  }

  async function check() {
    let doc;
    try {
      const response = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!response.ok || response.redirected) { later(); return; }
      doc = new DOMParser().parseFromString(await response.text(), "text/html");
    } catch (e) { later(); return; }
    const fresh = doc.getElementById("explanation");
    if (fresh && fresh.dataset.pending === "true") { later(); return; }
    if (fresh) show(doc); else location.reload(); // no explanation at all now: the page as it is
  }

  markLate();
  setTimeout(check, FIRST_MS);
})();
