// The dashboard's page: state from /api/state, then every change from
// /api/events. Everything from the chat is set as text (textContent),
// never as markup, so a message cannot inject anything.
"use strict";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function render(state) {
  const health = document.getElementById("health");
  health.textContent = state.connected ? "connected" : "chat server unreachable";
  health.className = state.connected ? "up" : "down";
  const root = document.getElementById("channels");
  root.replaceChildren();
  for (const ch of state.channels || []) {
    const sec = el("div", "channel");
    sec.append(el("h2", "", ch.name));
    const agents = Object.values(ch.agents || {}).sort();
    sec.append(el("p", "agents", agents.length ? "agents: " + agents.join(", ") : "no agents"));
    const list = el("ol", "messages");
    for (const m of ch.messages || []) {
      const li = el("li", "message");
      li.append(el("time", "", new Date(m.time).toLocaleTimeString()));
      li.append(el("b", "from", m.from_name));
      li.append(el("span", "content", m.content));
      list.append(li);
    }
    sec.append(list);
    root.append(sec);
  }
  document.body.dataset.seq = String(state.seq);
}

// The state at page load comes embedded as data (not code), then live.
render(JSON.parse(document.getElementById("state").textContent));
const events = new EventSource("/api/events");
events.onmessage = (e) => render(JSON.parse(e.data));
