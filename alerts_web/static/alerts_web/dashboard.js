// Worklist page: rows from the worklist endpoint (filters, search, sort, honest paging),
// kept current by a WebSocket that reconnects with exponential back-off and jitter.
// Every (re)connect and every live update refetches the page the nurse is looking at,
// so rows and counts are always the database's. New high-risk discharges are cued
// (sound unless muted, a flash, the tab title) and announced politely to screen readers.
(function () {
  "use strict";
  // configuration as a JSON data block, not an inline script: the CSP allows no inline script
  const cfg = JSON.parse(document.getElementById("dashboard-config").textContent);
  const ward = JSON.parse(document.getElementById("ward-code").textContent) || null;
  const body = document.getElementById("alerts-body");
  const badge = document.getElementById("live-status");
  const announcer = document.getElementById("announcer");
  const summary = document.getElementById("worklist-summary");
  const form = document.getElementById("worklist-filters");
  const prev = document.getElementById("page-prev");
  const next = document.getElementById("page-next");
  const muteBox = document.getElementById("mute");
  const template = document.getElementById("action-template");
  const COLUMNS = 6;
  const BACKOFF_BASE_MS = 1000;
  const BACKOFF_CAP_MS = 30000;
  const PING_EVERY_MS = 20000;
  const SILENCE_LIMIT_MS = 45000;
  const LATE_FACTORS_MS = 10000; // the encounter page's threshold too (pending.js)
  const baseTitle = document.title;
  const known = new Set(); // ids of rows this page has already told the nurse about
  let page = 1;
  let lastServerTime = null;
  let attempt = 0;
  let reconnects = 0;
  let socket = null;
  let retryTimer = null;
  let countdownTimer = null;
  let pingTimer = null;
  let lastHeard = 0;
  let refetchTimer = null;
  let pendingNew = [];
  let unseen = 0;
  let fetchSeq = 0;

  const timeFmt = new Intl.DateTimeFormat("en-GB", {
    timeZone: cfg.timeZone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });

  function fmtTime(iso) {
    if (!iso) return "—";
    const parts = Object.fromEntries(timeFmt.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute;
  }

  function fmtStay(hours) {
    if (hours == null) return null;
    const days = Math.floor(hours / 24);
    const rest = Math.round(hours - days * 24);
    return days ? days + " d " + rest + " h" : rest + " h";
  }

  // --- status badge: says exactly what the connection is doing --------------------------
  function setStatus(state, text, cls) {
    badge.textContent = text;
    badge.className = "badge " + cls;
    badge.dataset.state = state;
  }

  const ANNOUNCEMENTS_KEPT = 3;
  function announce(text) {
    // Each sentence is added, not written over the last: a reconnect's "Live connection
    // restored." right after the snapshot's "New high-risk discharge: …" replaced it before
    // a screen reader had read it. A new node per sentence also reads a repeat twice.
    const line = document.createElement("div");
    line.textContent = text;
    announcer.appendChild(line);
    while (announcer.childElementCount > ANNOUNCEMENTS_KEPT) announcer.firstElementChild.remove();
  }

  // --- cues ------------------------------------------------------------------------------
  muteBox.checked = localStorage.getItem("readmit-mute") === "1";
  muteBox.addEventListener("change", () => {
    localStorage.setItem("readmit-mute", muteBox.checked ? "1" : "0");
  });
  window.addEventListener("focus", () => { unseen = 0; document.title = baseTitle; });

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

  function describe(a) {
    const who = a.patient_name || ("MRN " + (a.mrn || "unknown"));
    const where = [a.unit, a.bed ? "bed " + a.bed : null].filter(Boolean).join(", ");
    return who + (where ? ", " + where : "") + ", " + Math.round(a.probability * 100) + " percent";
  }

  function cue(alerts) {
    const fresh = alerts.filter((a) => a.band === "high" && !known.has(a.id));
    for (const a of alerts) known.add(a.id);
    if (!fresh.length) return;
    beep();
    unseen += fresh.length;
    if (!document.hasFocus()) document.title = "(" + unseen + ") " + baseTitle;
    announce(fresh.length === 1
      ? "New high-risk discharge: " + describe(fresh[0]) + "."
      : fresh.length + " new high-risk discharges. Highest: " + describe(fresh[0]) + ".");
    for (const a of fresh) {
      const row = body.querySelector('tr[data-alert-id="' + a.id + '"]');
      if (row) {
        row.classList.add("flash");
        setTimeout(() => row.classList.remove("flash"), 6000);
      }
    }
  }

  // --- rows ------------------------------------------------------------------------------
  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  }

  function line(parent, parts, cls) {
    const text = parts.filter((p) => p != null && p !== "").join(" · ");
    if (text) parent.appendChild(el("div", text, cls));
  }

  function actionForm(alert, kind, label, cls) {
    const f = template.cloneNode(true);
    f.removeAttribute("id");
    f.action = cfg.actionUrl.replace("/0/", "/" + alert.id + "/").replace("KIND", kind);
    f.querySelector("input[name=next]").value = location.pathname + location.search;
    const btn = el("button", label, "btn btn-sm " + cls);
    btn.type = "submit";
    btn.dataset.action = kind;
    btn.setAttribute("aria-label", label + " " + (alert.patient_name || alert.mrn || "alert"));
    f.appendChild(btn);
    return f;
  }

  const BAND_CLASS = { high: "text-bg-danger", medium: "text-bg-warning", low: "text-bg-success" };

  // the top factor, or an honest "explaining…" while the explainer stage computes them
  // (the feed's update for the factors refetches the page: no polling here)
  function why(a) {
    if (a.factors_pending) {
      // due within a second: still missing after LATE_FACTORS_MS, the row says so
      const late = Date.now() - Date.parse(a.computed_at) > LATE_FACTORS_MS;
      const node = el("div", null, "small top-factor factors-pending " + (late ? "text-warning-emphasis" : "text-body-secondary"));
      const spin = el("span", null, "spinner-border spinner-border-sm me-1");
      spin.setAttribute("aria-hidden", "true");
      node.append(spin, late ? "Factors delayed" : "Explaining…");
      node.title = late
        ? "The factors behind this score have not arrived: the explanation service may be down"
        : "The factors behind this score are being computed";
      return node;
    }
    return el("div", a.top_factor ? "Top factor: " + a.top_factor : "", "small top-factor");
  }

  function row(a) {
    const tr = el("tr", null, "alert-row status-" + a.status + " band-" + a.band);
    tr.dataset.alertId = a.id;
    const risk = el("td", null, "text-nowrap");
    risk.appendChild(el("span", Math.round(a.probability * 100) + "%", "badge fs-6 " + (BAND_CLASS[a.band] || "text-bg-secondary")));
    risk.appendChild(el("div", a.band + " risk", "small text-body-secondary"));
    risk.appendChild(why(a));
    tr.appendChild(risk);

    const who = el("td");
    const link = el("a", a.patient_name || "Name not sent", "fw-semibold");
    link.href = cfg.encounterUrl.replace("ENCOUNTER", encodeURIComponent(a.encounter_id));
    who.appendChild(link);
    line(who, [a.mrn ? "MRN " + a.mrn : "MRN not sent", a.age_years != null ? a.age_years + " y" : null, a.sex], "small");
    if (a.earlier_stays) line(who, [a.earlier_stays + " earlier stay" + (a.earlier_stays > 1 ? "s" : "")], "small text-body-secondary");
    tr.appendChild(who);

    const where = el("td");
    line(where, [a.unit || a.ward_name]);
    line(where, [a.room ? "room " + a.room : null, a.bed ? "bed " + a.bed : null], "small");
    if (!ward) line(where, ["ward " + a.ward], "small text-body-secondary");
    tr.appendChild(where);

    const when = el("td");
    when.appendChild(el("div", fmtTime(a.discharged_at), "text-nowrap"));
    line(when, [fmtStay(a.length_of_stay_hours) ? "stay " + fmtStay(a.length_of_stay_hours) : null], "small");
    line(when, [a.disposition], "small text-body-secondary");
    tr.appendChild(when);

    const st = el("td");
    const status = el("div", a.status_label + (a.close_reason ? ": " + a.close_reason : ""));
    status.dataset.field = "status";
    status.dataset.status = a.status;
    st.appendChild(status);
    line(st, [a.assigned_to ? "assigned to " + a.assigned_to : "unassigned"], "small");
    if (a.last_action) {
      const last = el("div", a.last_action + " (" + fmtTime(a.last_action_at) + ")", "small text-body-secondary last-action");
      st.appendChild(last);
    }
    tr.appendChild(st);

    const actions = el("td", null, "text-end");
    if (a.status === "open") actions.appendChild(actionForm(a, "acknowledge", "Acknowledge", "btn-outline-primary"));
    const open = el("a", "Details", "btn btn-sm btn-link");
    open.href = link.href;
    actions.appendChild(open);
    tr.appendChild(actions);
    return tr;
  }

  function render(data) {
    const rows = data.rows.map(row);
    if (!rows.length) {
      const tr = el("tr");
      const td = el("td", "No discharges match these filters.", "text-body-secondary");
      td.colSpan = COLUMNS;
      tr.appendChild(td);
      rows.push(tr);
    }
    body.replaceChildren(...rows);
    const c = data.counts;
    summary.textContent = (data.total ? "Showing " + data.first + "–" + data.last + " of " + data.total : "Nothing to show") +
      " (page " + data.page + " of " + data.pages + "). In this view: " + c.open + " open, " +
      c.acknowledged + " acknowledged, " + c.closed + " closed.";
    page = data.page;
    prev.disabled = page <= 1;
    next.disabled = page >= data.pages;
    for (const th of document.querySelectorAll("th[data-sort]")) {
      const active = th.dataset.sort === form.elements.sort.value;
      if (active) th.setAttribute("aria-sort", form.elements.dir.value === "asc" ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
  }

  // --- filters and the URL -----------------------------------------------------------------
  function params() {
    const p = new URLSearchParams(new FormData(form));
    for (const [k, v] of [...p.entries()]) if (v === "" && k !== "ward") p.delete(k);
    if (ward) { p.delete("ward"); p.append("ward", ward); }
    if (page > 1) p.set("page", String(page));
    return p;
  }

  function restoreFilters() {
    const p = new URLSearchParams(location.search);
    for (const name of ["q", "status", "band", "assignee", "sort", "dir", "page_size"]) {
      if (p.has(name) && form.elements[name]) form.elements[name].value = p.get(name);
    }
    const wanted = new Set(p.getAll("ward"));
    for (const box of form.querySelectorAll("input[name=ward]")) box.checked = wanted.has(box.value);
    page = Math.max(1, parseInt(p.get("page") || "1", 10) || 1);
  }

  function syncUrl() {
    const p = params();
    if (ward) p.delete("ward");
    const qs = p.toString();
    history.replaceState(null, "", location.pathname + (qs ? "?" + qs : ""));
  }

  async function refresh() {
    const seq = ++fetchSeq;
    syncUrl();
    let response;
    try {
      response = await fetch(cfg.dataUrl + "?" + params().toString(), { headers: { Accept: "application/json" }, credentials: "same-origin" });
    } catch (e) {
      summary.textContent = "Could not load the worklist (network). Retrying when the connection is back.";
      return;
    }
    if (seq !== fetchSeq) return; // a newer request is on its way
    if (response.redirected || response.status === 401 || response.status === 403) {
      summary.textContent = "Your session ended. Log in again to see the worklist.";
      return;
    }
    const data = await response.json();
    render(data);
    if (pendingNew.length) { cue(pendingNew); pendingNew = []; }
    for (const a of data.rows) known.add(a.id);
  }

  function refreshSoon() {
    clearTimeout(refetchTimer);
    refetchTimer = setTimeout(refresh, 250);
  }

  form.addEventListener("change", () => { page = 1; refresh(); });
  form.addEventListener("submit", (ev) => { ev.preventDefault(); page = 1; refresh(); });
  let typing = null;
  form.elements.q.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => { page = 1; refresh(); }, 300); });
  prev.addEventListener("click", () => { page -= 1; refresh(); });
  next.addEventListener("click", () => { page += 1; refresh(); });
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.classList.add("sortable");
    th.tabIndex = 0;
    const flip = () => {
      if (form.elements.sort.value === th.dataset.sort) {
        form.elements.dir.value = form.elements.dir.value === "asc" ? "desc" : "asc";
      } else {
        form.elements.sort.value = th.dataset.sort;
        form.elements.dir.value = ["risk", "discharged", "last_action"].includes(th.dataset.sort) ? "desc" : "asc";
      }
      page = 1;
      refresh();
    };
    th.addEventListener("click", flip);
    th.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); flip(); } });
  }

  // --- the live connection -------------------------------------------------------------------
  function backoffDelay(n) {
    // "equal jitter": half the exponential step for sure, half at random, so a ward's
    // dashboards do not all come back in the same instant after a server restart
    const step = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** n);
    return step / 2 + Math.random() * (step / 2);
  }

  function onMessage(msg) {
    lastHeard = Date.now();
    if (badge.dataset.state !== "connected" && socket && socket.readyState === WebSocket.OPEN) {
      setStatus("connected", "Live", "text-bg-success");
    }
    if (msg.server_time) lastServerTime = msg.server_time;
    if (msg.type === "snapshot") {
      const missed = msg.alerts.filter((a) => a.missed);
      pendingNew.push(...missed);
      if (!known.size) for (const a of msg.alerts) if (!a.missed) known.add(a.id);
      refresh();
    } else if (msg.type === "alert" || msg.type === "update") {
      if (msg.type === "alert" && msg.alert.status !== "closed") pendingNew.push(msg.alert);
      refreshSoon();
    }
  }

  function scheduleReconnect() {
    if (!navigator.onLine) {
      setStatus("offline", "Offline — reconnects when the network is back", "text-bg-danger");
      return;
    }
    const delay = backoffDelay(attempt++);
    const due = Date.now() + delay;
    const tick = () => {
      const left = Math.max(0, Math.ceil((due - Date.now()) / 1000));
      setStatus("reconnecting", "Reconnecting in " + left + " s", "text-bg-warning");
    };
    tick();
    clearInterval(countdownTimer);
    countdownTimer = setInterval(tick, 1000);
    retryTimer = setTimeout(() => { clearInterval(countdownTimer); connect(); }, delay);
  }

  function stopTimers() {
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    clearInterval(pingTimer);
  }

  function connect() {
    stopTimers();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let url = scheme + "://" + location.host + (ward ? "/ws/wards/" + encodeURIComponent(ward) + "/" : "/ws/worklist/");
    if (lastServerTime) url += "?since=" + encodeURIComponent(lastServerTime);
    setStatus(attempt ? "reconnecting" : "connecting", attempt ? "Reconnecting…" : "Connecting…", "text-bg-warning");
    const ws = new WebSocket(url);
    socket = ws;
    ws.onopen = () => {
      if (attempt) { reconnects += 1; announce("Live connection restored."); }
      attempt = 0;
      lastHeard = Date.now();
      setStatus("connected", "Live", "text-bg-success");
      pingTimer = setInterval(() => {
        if (Date.now() - lastHeard > SILENCE_LIMIT_MS) { ws.close(); return; } // a dead socket
        try { ws.send(JSON.stringify({ type: "ping" })); } catch (e) { /* onclose follows */ }
      }, PING_EVERY_MS);
    };
    ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
    ws.onclose = (ev) => {
      if (socket !== ws) return;
      clearInterval(pingTimer);
      if (ev.code === 4403) {
        setStatus("no-access", "No access to this ward", "text-bg-danger");
        return;
      }
      if (badge.dataset.state === "connected") announce("Live connection lost. Reconnecting.");
      scheduleReconnect();
    };
  }

  window.addEventListener("offline", () => {
    setStatus("offline", "Offline — reconnects when the network is back", "text-bg-danger");
  });
  window.addEventListener("online", () => {
    if (badge.dataset.state !== "connected") { attempt = 0; connect(); }
  });

  window.readmitDashboard = {
    reconnectCount: () => reconnects,
    state: () => badge.dataset.state,
    backoffDelay,
    refresh,
  };
  restoreFilters();
  // the rows come from the data endpoint, not the socket: a nurse behind a proxy that
  // blocks WebSockets still gets the worklist (the badge says the connection is not live)
  refresh();
  connect();
})();
