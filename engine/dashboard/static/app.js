// The team's page. The chat (channels, messages) comes from the dashboard's
// container: /api/state, then /api/events. The team (health, agents,
// spend) comes from the host, read-only: /api/team, then
// /api/team/events; the compose box posts to /api/send as you. Everything
// is set as text (textContent) or as SVG attributes, never as markup, so
// nothing from the chat or the agents can inject anything.
"use strict";

let chat = { channels: [] };
let team = null;
let detail = ""; // the agent whose log is open

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function count(n) {
  if (n < 1000) return String(n);
  if (n < 1e6) return (n / 1e3).toFixed(1) + "k";
  return (n / 1e6).toFixed(2) + "M";
}

function cost(row) {
  if (!row || row.cost_usd === undefined || row.cost_usd === null) return "";
  const c = row.cost_usd;
  const s = "$" + (c > 0 && c < 0.01 ? c.toFixed(4) : c.toFixed(2));
  return row.cost_partial ? "≥ " + s : s;
}

function since(t) {
  if (!t) return "";
  const s = Math.max(0, Math.round((Date.now() - new Date(t).getTime()) / 1000));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  return Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
}

function agentNames() {
  return team ? (team.status.agents || []).map((a) => a.name) : [];
}

function renderChat() {
  const health = document.getElementById("health");
  health.textContent = chat.connected ? "chat connected" : "chat server unreachable";
  health.className = chat.connected ? "up" : "down";
  const root = document.getElementById("channels");
  root.replaceChildren();
  for (const ch of chat.channels || []) {
    const sec = el("div", "channel");
    sec.append(el("h3", "", ch.name));
    const agents = Object.values(ch.agents || {}).sort();
    sec.append(el("p", "agents", agents.length ? "here: " + agents.join(", ") : "nobody here"));
    const list = el("ol", "messages");
    for (const m of ch.messages || []) list.append(message(m));
    sec.append(list);
    root.append(sec);
    list.scrollTop = list.scrollHeight;
  }
  renderTargets();
  if (detail) renderDetailMessages();
  document.body.dataset.seq = String(chat.seq);
}

function message(m) {
  const li = el("li", m.content.startsWith("⋯ ") ? "message progress" : "message");
  li.append(el("time", "", new Date(m.time).toLocaleTimeString()));
  li.append(el("b", "from", m.from_name));
  li.append(el("span", "content", m.content));
  return li;
}

function renderTargets() {
  const sel = document.getElementById("compose-to");
  const want = sel.value;
  const opts = (chat.channels || []).map((c) => c.name).filter((n) => n.startsWith("#"));
  for (const a of agentNames()) opts.push(a);
  if (opts.join("|") === Array.from(sel.options).map((o) => o.value).join("|")) return;
  sel.replaceChildren();
  for (const o of opts) {
    const opt = el("option", "", o.startsWith("#") ? o : "@" + o + " (direct)");
    opt.value = o;
    sel.append(opt);
  }
  if (opts.includes(want)) sel.value = want;
}

function renderTeam() {
  if (!team) return;
  const st = team.status;
  const comps = st.components || [];
  const bad = comps.filter((c) => c.state !== "healthy");
  const overall = document.getElementById("overall");
  overall.textContent = !st.running ? "stopped" : bad.length ? bad.length + " not healthy" : "all healthy";
  overall.className = !st.running ? "stopped" : bad.some((c) => c.state === "failed") ? "down" : bad.length ? "degraded" : "up";
  const today = st.today;
  document.getElementById("today").textContent = today && (today.tokens_in + today.tokens_out) > 0
    ? "today: " + count(today.tokens_in + today.tokens_out) + " tokens" + (cost(today) ? " · " + cost(today) : "")
    : "today: nothing spent";

  const list = document.getElementById("components");
  list.replaceChildren();
  for (const c of comps) {
    const li = el("li", "component");
    li.dataset.name = c.name;
    li.append(el("b", "", c.name + " "));
    li.append(el("span", c.state, c.state));
    li.append(el("span", "muted", " since " + since(c.since) + (c.restarts ? " · " + c.restarts + " restarts" : "")));
    const d = c.state !== "healthy" && c.last_error ? c.last_error : c.detail;
    if (d) li.append(el("span", "detail", d));
    list.append(li);
  }

  const agents = document.getElementById("agents");
  agents.replaceChildren();
  for (const a of st.agents || []) {
    const card = el("div", "agent");
    card.dataset.name = a.name;
    card.append(el("span", "name", a.name));
    card.append(el("span", a.state, a.state));
    let work = a.work || "—";
    if (a.work === "working") work = "working on “" + a.task + "” for " + since(a.work_since) + (a.queued ? " (+" + a.queued + " queued)" : "");
    if (a.work === "needs you") work = "needs you: " + a.task;
    card.append(el("span", "work", work));
    // Its current step: its last progress line in the chat, while it works.
    const step = a.work === "working" ? lastStep(a.name) : "";
    if (step) card.append(el("span", "step", step));
    const t = a.today;
    card.append(el("span", "spend", t ? count(t.tokens_in + t.tokens_out) + " tokens today in " + t.requests + (t.requests === 1 ? " request" : " requests") + (cost(t) ? " · " + cost(t) : "") : "nothing spent today"));
    if (a.budget) {
      const b = a.budget;
      const frac = Math.max(b.tokens ? b.used_tokens / b.tokens : 0, b.requests ? b.used_requests / b.requests : 0);
      const bar = el("progress");
      bar.max = 1;
      bar.value = Math.min(1, frac);
      bar.title = "budget: " + Math.round(frac * 100) + "% used, resets " + new Date(b.resets).toLocaleString();
      card.append(bar);
    }
    card.append(el("span", "activity", a.work_since ? "last activity " + since(a.work_since) + " ago" : "up " + since(a.since)));
    card.addEventListener("click", () => openDetail(a.name));
    agents.append(card);
  }

  renderSpend();
  renderTargets();
}

function lastStep(name) {
  let last = null;
  for (const ch of chat.channels || []) {
    for (const m of ch.messages || []) {
      if (m.from_name === name && m.content.startsWith("⋯ ") && (!last || new Date(m.time) > new Date(last.time))) last = m;
    }
  }
  return last ? last.content : "";
}

function renderSpend() {
  const u = team.usage;
  const body = document.querySelector("#spend-table tbody");
  body.replaceChildren();
  for (const r of u.rows || []) {
    const tr = el("tr");
    for (const v of [r.agent, r.model || "—", String(r.requests), count(r.tokens_in + r.tokens_out), cost(r) || "no price"]) tr.append(el("td", "", v));
    body.append(tr);
  }
  const tot = el("tr", "total");
  for (const v of ["total", "", String(u.total.requests), count(u.total.tokens_in + u.total.tokens_out), cost(u.total) || "—"]) tot.append(el("td", "", v));
  body.append(tot);
  document.getElementById("prices").textContent = "estimated at the prices of " + u.prices_date +
    (u.unpriced && u.unpriced.length ? "; no price for " + u.unpriced.join(", ") : "");

  // Tokens per minute over the last hour, as bars.
  const svg = document.getElementById("chart");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const s = team.series || [];
  const peak = Math.max(1, ...s);
  const w = 320 / Math.max(1, s.length);
  s.forEach((v, i) => {
    if (!v) return;
    const h = Math.max(1, Math.round((v / peak) * 76));
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", String(i * w));
    r.setAttribute("y", String(80 - h));
    r.setAttribute("width", String(Math.max(1, w - 1)));
    r.setAttribute("height", String(h));
    const t = document.createElementNS(ns, "title");
    t.textContent = count(v) + " tokens";
    r.append(t);
    svg.append(r);
  });
  document.getElementById("chart-label").textContent = "tokens per minute, the last hour (peak " + count(peak) + ")";
}

async function openDetail(name) {
  detail = name;
  document.getElementById("agent-detail").hidden = false;
  document.getElementById("detail-name").textContent = name;
  renderDetailMessages();
  const log = document.getElementById("detail-log");
  try {
    const r = await fetch("/api/team/log?agent=" + encodeURIComponent(name) + "&n=100");
    const lines = r.ok ? await r.json() : [];
    log.textContent = lines.map((l) => new Date(l.time).toLocaleTimeString() + " " + l.text).join("\n") || "(nothing logged)";
  } catch (e) {
    log.textContent = "(the log could not be read: " + e + ")";
  }
}

function renderDetailMessages() {
  const list = document.getElementById("detail-messages");
  list.replaceChildren();
  const mine = [];
  for (const ch of chat.channels || []) {
    for (const m of ch.messages || []) {
      if (m.from_name === detail || m.from_name.startsWith(detail + " →") || m.from_name.endsWith("→ " + detail) || m.content.includes("@" + detail)) mine.push(m);
    }
  }
  mine.sort((a, b) => new Date(a.time) - new Date(b.time));
  for (const m of mine.slice(-30)) list.append(message(m));
}

// The compose box: Enter sends, Shift+Enter is a new line; "@" offers the
// agents' names.
function mentionPrefix(text) {
  const m = /@([\w-]*)$/.exec(text);
  return m ? m[1] : null;
}

function renderMentions() {
  const box = document.getElementById("mentions");
  box.replaceChildren();
  const area = document.getElementById("compose-text");
  const p = mentionPrefix(area.value.slice(0, area.selectionStart));
  if (p === null) return;
  for (const name of agentNames().filter((n) => n.startsWith(p))) {
    const b = el("button", "mention", "@" + name);
    b.type = "button";
    b.addEventListener("click", () => {
      const at = area.selectionStart;
      const before = area.value.slice(0, at).replace(/@[\w-]*$/, "@" + name + " ");
      area.value = before + area.value.slice(at);
      area.focus();
      area.selectionStart = area.selectionEnd = before.length;
      renderMentions();
    });
    box.append(b);
  }
}

async function send() {
  const area = document.getElementById("compose-text");
  const status = document.getElementById("compose-status");
  const text = area.value.trim();
  if (!text) return;
  const to = document.getElementById("compose-to").value;
  status.textContent = "sending…";
  try {
    const r = await fetch("/api/send", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ to, text }) });
    if (!r.ok) {
      status.textContent = "not sent: " + (await r.text());
      return;
    }
    area.value = "";
    renderMentions();
    status.textContent = "sent to " + to;
  } catch (e) {
    status.textContent = "not sent: " + e;
  }
}

// A link that drops (the daemon restarts) says so until it is back.
const down = new Set();
function linkState(name, ok) {
  if (ok) down.delete(name); else down.add(name);
  document.getElementById("link").hidden = down.size === 0;
}

// The browser retries a dropped stream by itself, but gives up for good
// on an answer that is not a stream (a 502 while the daemon and the
// dashboard's container come back): then it is opened anew, 2 s later.
function follow(url, name, apply) {
  const es = new EventSource(url);
  es.onopen = () => linkState(name, true);
  es.onmessage = (e) => { linkState(name, true); apply(JSON.parse(e.data)); };
  es.onerror = () => {
    linkState(name, false);
    if (es.readyState === EventSource.CLOSED) {
      setTimeout(() => follow(url, name, apply), 2000);
    }
  };
}

// The chat at page load comes embedded as data (not code), then live.
chat = JSON.parse(document.getElementById("state").textContent);
renderChat();
follow("/api/events", "chat", (s) => { chat = s; renderChat(); renderTeam(); });
follow("/api/team/events", "team", (t) => { team = t; renderTeam(); });
document.getElementById("compose-send").addEventListener("click", send);
const area = document.getElementById("compose-text");
area.addEventListener("input", renderMentions);
area.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    send();
  }
});
document.getElementById("detail-close").addEventListener("click", () => {
  detail = "";
  document.getElementById("agent-detail").hidden = true;
});
setInterval(renderTeam, 10000); // the "since" times move on
