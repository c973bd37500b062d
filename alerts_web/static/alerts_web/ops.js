// Ops page: refresh the numbers from status.json every 5 seconds.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  // The URL comes as JSON data, not an inline script: the CSP allows no inline script.
  const statusUrl = JSON.parse($("ops-status-url").textContent);
  function td(text) { const c = document.createElement("td"); c.textContent = text == null ? "—" : text; return c; }
  function fmt(v, digits) { return v == null ? "—" : Number(v).toFixed(digits); }
  const charts = {};
  function plot(history) {
    if (typeof Chart === "undefined" || !history) return;
    const labels = history.t.map((t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    document.querySelectorAll("#ops-plots canvas").forEach((canvas) => {
      const key = canvas.id.replace("plot-", "");
      if (!charts[key]) {
        charts[key] = new Chart(canvas, {
          type: "line",
          data: { labels: [], datasets: [{ data: [], borderColor: "#0d6efd", pointRadius: 0, spanGaps: false, tension: 0.2 }] },
          options: { animation: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true }, x: { ticks: { maxTicksLimit: 6 } } } },
        });
      }
      charts[key].data.labels = labels;
      charts[key].data.datasets[0].data = history[key];
      charts[key].update();
    });
  }
  const initial = document.getElementById("ops-history");
  if (initial) plot(JSON.parse(initial.textContent));
  async function refresh() {
    try {
      const r = await fetch(statusUrl, { headers: { Accept: "application/json" } });
      if (!r.ok) return;
      const s = await r.json();
      $("ops-rate").textContent = fmt(s.events_per_second, 1);
      $("ops-lag").textContent = s.total_lag;
      $("ops-dlq").textContent = fmt(s.dead_letters_total, 0);
      $("ops-model").textContent = s.model_versions.join(", ") || "—";
      const fp = s.factors_pending;
      $("ops-pending").textContent = fp.alerts;
      const age = $("ops-pending-age");
      age.className = "small " + (fp.late ? "text-danger-emphasis fw-semibold" : "text-body-secondary");
      age.textContent = fp.late
        ? "oldest " + fmt(fp.oldest_seconds, 0) + " s: is an explainer running? (RUNBOOK: ReadmitExplainersAllDown)"
        : (fp.alerts ? "oldest " + fmt(fp.oldest_seconds, 1) + " s" : "none");
      $("ops-lag-error").textContent = s.lag_error || "";
      $("ops-lag-rows").replaceChildren(...s.lag.map((p) => {
        const tr = document.createElement("tr");
        [p.group, p.topic, p.partition, p.end_offset, p.committed, p.lag].forEach((v) => tr.appendChild(td(v)));
        return tr;
      }));
      $("ops-scorers").replaceChildren(...s.scorers.map((x) => {
        const li = document.createElement("li");
        const b = document.createElement("span");
        b.className = "badge " + (x.up ? "text-bg-success" : "text-bg-danger");
        b.textContent = x.up ? "up" : "down";
        li.append(b, " " + x.url + " · consumed " + fmt(x.consumed, 0) + " · scored " + fmt(x.scored, 0));
        return li;
      }));
      const m = s.model || {};
      $("ops-model-metrics").textContent = m.error ? m.error :
        (m.version || "") + "\n" + Object.entries(m.metrics || {}).map(([k, v]) => k + ": " + v).join("\n");
      plot(s.history);
      $("ops-updated").textContent = new Date().toLocaleTimeString();
    } catch (e) { /* keep the last numbers; next tick retries */ }
  }
  setInterval(refresh, 5000);
})();
