package cli

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTeamPage: the dashboard in a real browser, on a running stack of two
// agents: it shows every component and agent; a message typed into the
// compose box (the agents' names offered after "@") reaches the agent,
// whose answer appears; the tokens its run spent show on the page; across
// a daemon restart the page says "reconnecting…" and comes back.
// THESYSTEM_UPDATE_SCREENSHOT=1 writes engine/dashboard/screenshot.png.
func TestTeamPage(t *testing.T) {
	d := newDaemonEnv(t)
	up := &upstreamRecorder{}
	fake := httptest.NewServer(up)
	defer fake.Close()
	d.env = append(d.env, "THESYSTEM_CLAUDE_BIN="+buildVMCheck(t))
	d.startStack(t, fmt.Sprintf("proxy:\n  port: %d\n  upstreams:\n    anthropic: %s\n  budget:\n    tokens: 100\n"+
		"server:\n  port: %d\n  dashboard: %d\nswarm:\n  agents: 2\nchannels: ['#general']\n", d.port, fake.URL, d.chatPort, d.dashPort),
		"sk-ant-api03-PLANTEDteam0123456789abcdefghij")
	r := d.run(t, "dashboard", "url")
	if r.code != 0 {
		t.Fatalf("dashboard url: %+v", r)
	}
	b := openBrowser(t, strings.TrimSpace(r.stdout))

	b.waitFor("every component and agent", `(() => {
		const c = document.getElementById("components").innerText;
		return ["agentauth-proxy", "agentchat-server", "dashboard", "swarm", "agent-1", "agent-2"].every((n) => c.includes(n)) &&
			document.querySelectorAll("#agents .agent").length === 2 && document.getElementById("overall").textContent === "all healthy";
	})()`, time.Minute)
	b.waitFor("the agents in the chat", `document.getElementById("channels").innerText.includes("agent-1")`, time.Minute)
	if got := b.eval(`document.getElementById("today").textContent`); got != "today: nothing spent" {
		t.Errorf("today before any work: %q", got)
	}

	// Typing "@ag" offers both agents; picking one completes the name.
	b.eval(`document.getElementById("compose-to").value = "#general"; document.getElementById("compose-text").focus(); "ok"`)
	b.call("Input.insertText", map[string]any{"text": "@ag"})
	b.waitFor("the agents offered", `document.querySelectorAll("#mentions button").length === 2`, 10*time.Second)
	b.eval(`document.querySelector("#mentions button").click(); "ok"`)
	b.call("Input.insertText", map[string]any{"text": "check"})
	if got := b.eval(`document.getElementById("compose-text").value`); got != "@agent-1 check" {
		t.Errorf("the compose box holds %q", got)
	}
	b.eval(`document.getElementById("compose-send").click(); "ok"`)
	b.waitFor("sent", `document.getElementById("compose-status").textContent === "sent to #general"`, 10*time.Second)
	b.waitFor("the agent's answer", `[...document.querySelectorAll("#channels .message")].some((m) =>
		m.querySelector(".from").textContent === "agent-1" && m.querySelector(".content").textContent.includes("proxy"))`, 2*time.Minute)
	// Its run called the provider through the proxy: 7 tokens (3 in, 4 out).
	b.waitFor("the tokens spent", `document.getElementById("today").textContent.includes("7 tokens") &&
		document.querySelector('#agents .agent[data-name="agent-1"] .spend').textContent.includes("7 tokens today") &&
		document.querySelector('#agents .agent[data-name="agent-1"] progress').value > 0`, 30*time.Second)
	if rows := b.eval(`document.querySelectorAll("#spend-table tbody tr").length`); rows != "2" {
		t.Errorf("the spend table has %s rows, want agent-1's and the total", rows)
	}
	if bars := b.eval(`document.querySelectorAll("#chart rect").length`); bars == "0" {
		t.Error("no bar in the chart")
	}

	// An agent's log, a click away.
	b.eval(`document.querySelector('#agents .agent[data-name="agent-1"]').click(); "ok"`)
	b.waitFor("agent-1's log", `!document.getElementById("agent-detail").hidden && document.getElementById("detail-log").textContent.length > 20 &&
		document.getElementById("detail-messages").children.length > 0`, 10*time.Second)

	shot := filepath.Join(t.TempDir(), "dashboard.png")
	if os.Getenv("THESYSTEM_UPDATE_SCREENSHOT") == "1" {
		shot = filepath.Join("..", "engine", "dashboard", "screenshot.png")
	}
	b.screenshot(shot)

	// The daemon goes away and comes back: the page says so, then goes on.
	if r := d.run(t, "stop"); r.code != 0 {
		t.Fatalf("stop: %+v", r)
	}
	b.waitFor("reconnecting shown", `!document.getElementById("link").hidden`, 30*time.Second)
	if r := d.run(t, "start"); r.code != 0 {
		t.Fatalf("start again: %+v", r)
	}
	b.waitFor("back", `document.getElementById("link").hidden && document.getElementById("overall").textContent === "all healthy"`, 2*time.Minute)

	// The dashboard's container alone restarts: while it is away the host
	// answers its routes 502, which ends a browser's stream for good; the
	// page opens it anew and hears the chat again.
	if r := d.run(t, "restart", "dashboard"); r.code != 0 {
		t.Fatalf("restart dashboard: %+v", r)
	}
	b.waitFor("reconnecting shown", `!document.getElementById("link").hidden`, 30*time.Second)
	b.waitFor("back after the dashboard's restart", `document.getElementById("link").hidden`, time.Minute)
	if r := d.run(t, "chat", "send", "#general", "after the restart"); r.code != 0 {
		t.Fatalf("chat send: %+v", r)
	}
	b.waitFor("the chat live again", `[...document.querySelectorAll("#channels .message .content")].some((c) => c.textContent.includes("after the restart"))`, 30*time.Second)
}
