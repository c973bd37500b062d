// Ward dashboard: live alert list over a WebSocket, with reconnect + catch-up and a cue.
// The server sends a snapshot on every (re)connect; `since` marks what we missed.
(function () {
  "use strict";
  const ward = JSON.parse(document.getElementById("ward-code").textContent);
  // URL templates as JSON data, not an inline script: the CSP allows no inline script.
  const urls = JSON.parse(document.getElementById("dashboard-urls").textContent);
  const body = document.getElementById("alerts-body");
  const statusBadge = document.getElementById("live-status");
  const muteBox = document.getElementById("mute");
  const template = document.getElementById("action-template");
  const alerts = new Map();
  let lastServerTime = null;
  let retry = 0;
  let unseen = 0;
  const baseTitle = document.title;

  muteBox.checked = localStorage.getItem("readmit-mute") === "1";
  muteBox.addEventListener("change", () => {
    localStorage.setItem("readmit-mute", muteBox.checked ? "1" : "0");
  });
  window.addEventListener("focus", () => { unseen = 0; document.title = baseTitle; });

  function setStatus(text, cls) {
    statusBadge.textContent = text;
    statusBadge.className = "badge " + cls;
    statusBadge.dataset.state = text;
  }

  function beep() {
    if (muteBox.checked) return;
    try {
      const ctx = new (window.AudioContext || window.webkitAudioContext)();
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, ctx.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.6);
      osc.connect(gain).connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.6);
    } catch (e) { /* no audio device: the visual cue remains */ }
  }

  function cue(ids) {
    if (!ids.length) return;
    beep();
    unseen += ids.length;
    if (!document.hasFocus()) document.title = "(" + unseen + ") " + baseTitle;
    for (const id of ids) {
      const row = document.querySelector('tr[data-alert-id="' + id + '"]');
      if (row) {
        row.classList.add("flash");
        setTimeout(() => row.classList.remove("flash"), 6000);
      }
    }
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text == null ? "—" : text;
    return td;
  }

  function actionForm(alert, kind, label, cls) {
    const form = template.cloneNode(true);
    form.removeAttribute("id");
    form.action = urls.actionUrl.replace("/0/", "/" + alert.id + "/").replace("KIND", kind);
    const btn = document.createElement("button");
    btn.type = "submit";
    btn.className = "btn btn-sm " + cls;
    btn.textContent = label;
    btn.dataset.action = kind;
    form.appendChild(btn);
    return form;
  }

  function row(alert) {
    const tr = document.createElement("tr");
    tr.dataset.alertId = alert.id;
    tr.className = "alert-row status-" + alert.status;
    const risk = document.createElement("td");
    const badge = document.createElement("span");
    badge.className = "badge text-bg-danger fs-6";
    badge.textContent = Math.round(alert.probability * 100) + "%";
    risk.appendChild(badge);
    tr.appendChild(risk);
    const enc = document.createElement("td");
    const link = document.createElement("a");
    link.href = urls.encounterUrl.replace("ENCOUNTER", encodeURIComponent(alert.encounter_id));
    link.textContent = alert.encounter_id;
    enc.appendChild(link);
    tr.appendChild(enc);
    tr.appendChild(cell(alert.patient_id));
    tr.appendChild(cell(alert.top_factor, "small"));
    const st = cell(alert.status);
    st.dataset.field = "status";
    tr.appendChild(st);
    tr.appendChild(cell(alert.assigned_to));
    tr.appendChild(cell(new Date(alert.computed_at).toLocaleString(), "small text-nowrap"));
    const actions = document.createElement("td");
    actions.className = "text-end text-nowrap";
    if (alert.status === "open") actions.appendChild(actionForm(alert, "acknowledge", "Acknowledge", "btn-outline-primary"));
    const open = document.createElement("a");
    open.className = "btn btn-sm btn-link";
    open.href = link.href;
    open.textContent = "Details";
    actions.appendChild(open);
    tr.appendChild(actions);
    return tr;
  }

  // Rows are kept and only rebuilt when their alert changed, so a live update never
  // swaps the row (and its buttons) out from under a nurse's click.
  const rows = new Map();

  function signature(a) {
    return [a.status, a.assigned_to, a.probability, a.top_factor, a.updated_at].join("|");
  }

  function render() {
    const sorted = [...alerts.values()]
      .filter((a) => a.status !== "closed")
      .sort((a, b) => b.probability - a.probability || b.created_at.localeCompare(a.created_at));
    const keep = new Set(sorted.map((a) => a.id));
    for (const [id, entry] of rows) {
      if (!keep.has(id)) { entry.tr.remove(); rows.delete(id); }
    }
    for (const el of body.querySelectorAll("tr:not(.alert-row)")) el.remove();
    let previous = null;
    for (const alert of sorted) {
      let entry = rows.get(alert.id);
      const sig = signature(alert);
      if (!entry || entry.sig !== sig) {
        const tr = row(alert);
        if (entry) {
          if (entry.tr.classList.contains("flash")) tr.classList.add("flash");
          entry.tr.replaceWith(tr);
        }
        entry = { tr, sig };
        rows.set(alert.id, entry);
      }
      const expected = previous ? previous.nextSibling : body.firstChild;
      if (expected !== entry.tr) body.insertBefore(entry.tr, expected);
      previous = entry.tr;
    }
    if (!sorted.length) {
      const tr = document.createElement("tr");
      tr.appendChild(cell("No open high-risk discharges on this ward.", "text-body-secondary"));
      tr.firstChild.colSpan = 8;
      body.replaceChildren(tr);
    }
  }

  function onMessage(msg) {
    if (msg.server_time) lastServerTime = msg.server_time;
    if (msg.type === "snapshot") {
      alerts.clear();
      for (const a of msg.alerts) alerts.set(a.id, a);
      render();
      cue(msg.alerts.filter((a) => a.missed).map((a) => a.id));
    } else if (msg.type === "alert" || msg.type === "update") {
      const isNew = !alerts.has(msg.alert.id);
      alerts.set(msg.alert.id, msg.alert);
      render();
      if (isNew && msg.type === "alert") cue([msg.alert.id]);
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let url = scheme + "://" + location.host + "/ws/wards/" + encodeURIComponent(ward) + "/";
    if (lastServerTime) url += "?since=" + encodeURIComponent(lastServerTime);
    const ws = new WebSocket(url);
    ws.onopen = () => { retry = 0; setStatus("live", "text-bg-success"); };
    ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
    ws.onclose = (ev) => {
      if (ev.code === 4403) { setStatus("no access", "text-bg-danger"); return; }
      const delay = Math.min(15000, 1000 * 2 ** retry++);
      setStatus("reconnecting…", "text-bg-warning");
      setTimeout(connect, delay);
    };
  }

  window.readmitDashboard = { alerts, reconnectCount: () => retry };
  connect();
})();
