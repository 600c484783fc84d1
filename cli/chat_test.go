package cli

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
)

// chatByHand is what a user does with `chat send` and `chat tail` on a
// running stack whose agents run echotask: a task in #general by mention,
// a direct message, both answered and both in the tail (JSON and text);
// mistakes get an error that says what is wrong.
func chatByHand(t *testing.T, d *daemonEnv) {
	t.Helper()
	answer := askAgent(t, d.env, "agent-2", "say hello", 30*time.Second)
	if !strings.Contains(answer, "say hello") {
		t.Errorf("agent-2 answered %q", answer)
	}
	if r := d.run(t, "chat", "send", "agent-1", "a direct question"); r.code != 0 || !strings.Contains(r.stderr, "sent to agent-1") {
		t.Fatalf("chat send agent-1: %+v", r)
	}
	var tail []api.ChatMessage
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r := d.run(t, "chat", "tail", "-n", "100", "--json")
		if r.code != 0 {
			t.Fatalf("chat tail: %+v", r)
		}
		tail = tail[:0]
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var m api.ChatMessage
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("chat tail --json: %q: %v", l, err)
			}
			tail = append(tail, m)
		}
		if slices.ContainsFunc(tail, func(m api.ChatMessage) bool {
			return m.Direct && m.From == "agent-1" && m.To == "user" && strings.Contains(m.Content, "a direct question")
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no direct answer from agent-1 in the tail:\n%s", r.stdout)
		}
	}
	for _, want := range []api.ChatMessage{
		{From: "user", To: "#general", Content: "@agent-2 say hello"},
		{From: "user", To: "agent-1", Direct: true, Content: "a direct question"},
	} {
		if !slices.ContainsFunc(tail, func(m api.ChatMessage) bool {
			return m.From == want.From && m.To == want.To && m.Direct == want.Direct && m.Content == want.Content && !m.Time.IsZero()
		}) {
			t.Errorf("the tail lacks %+v:\n%+v", want, tail)
		}
	}
	r := d.run(t, "chat", "tail", "-n", "3")
	if r.code != 0 || !strings.Contains(r.stdout, "#general   agent-2: ") || !strings.Contains(r.stdout, "user → agent-1: a direct question\n") ||
		!strings.Contains(r.stdout, "agent-1 → user: ") || strings.Contains(r.stdout, "#general   user: ") {
		t.Errorf("chat tail -n 3, the last three messages: %+v", r)
	}

	// One channel: only what was said there, the last n of it.
	if r := d.run(t, "chat", "tail", "-n", "1", "#general"); r.code != 0 || !strings.Contains(r.stdout, "#general   agent-2: ") ||
		strings.Contains(r.stdout, "#general   user: ") || strings.Contains(r.stdout, "→") {
		t.Errorf("chat tail -n 1 #general: %+v", r)
	}
	// A message from standard input with -.
	if r := runIn(t, d.dir, d.env, "@agent-2 from stdin\n", "chat", "send", "#general", "-"); r.code != 0 {
		t.Fatalf("chat send #general -: %+v", r)
	}
	waitTail(t, d, "#general   user: @agent-2 from stdin")

	// Following: a message said after the follow began arrives.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	got := make(chan api.ChatMessage, 16)
	go func() {
		_ = d.client().FollowChat(ctx, "", 0, func(m api.ChatMessage) bool { got <- m; return true })
	}()
	time.Sleep(300 * time.Millisecond) // the stream is open
	if r := d.run(t, "chat", "send", "#general", "for whoever follows"); r.code != 0 {
		t.Fatalf("chat send: %+v", r)
	}
	for m := range got {
		if m.Content == "for whoever follows" {
			break
		}
	}

	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"an unknown channel", []string{"chat", "send", "#nope", "hi"}, "", `no channel "#nope": the channels are #general`},
		{"an agent not in the chat", []string{"chat", "send", "agent-9", "hi"}, "", `"agent-9" is not in the chat`},
		{"nothing to say", []string{"chat", "send", "#general"}, "  \n", "nothing to say"},
		{"-n below 0", []string{"chat", "tail", "-n", "-1"}, "", "-n must be 0 or more"},
		{"tail of a name", []string{"chat", "tail", "general"}, "", `"general" is not a channel: give one as #name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runIn(t, d.dir, d.env, tc.stdin, tc.args...)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%v: %+v, want an error with %q", tc.args, r, tc.want)
			}
		})
	}
	// One agent restarts alone, and is back in the chat; a stranger's name
	// is refused with the agents this stack has.
	if r := d.run(t, "restart", "agent-9"); r.code == 0 || !strings.Contains(r.stderr, `no "agent-9" in this stack (its agents: agent-1, agent-2)`) {
		t.Errorf("restart agent-9: %+v", r)
	}
	if r := d.run(t, "restart", "agent-1"); r.code != 0 || !strings.Contains(r.stdout, "restarted agent-1") {
		t.Fatalf("restart agent-1: %+v", r)
	}
	if a := askAgent(t, d.env, "agent-1", "back?", 30*time.Second); !strings.Contains(a, "back?") {
		t.Errorf("agent-1 after its restart answered %q", a)
	}

	// A new conversation, on request: the agent says so.
	if r := d.run(t, "agents", "reset", "agent-2"); r.code != 0 || !strings.Contains(r.stderr, "asked agent-2 to start a new conversation") {
		t.Errorf("agents reset: %+v", r)
	}
	waitTail(t, d, "agent-2 → user: Started a new conversation")

	// What each agent does: idle after its tasks.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var agents []api.Agent
		r := d.run(t, "agents", "list", "--json")
		_ = json.Unmarshal([]byte(r.stdout), &agents)
		if len(agents) == 2 && agents[0].Work == "idle" && agents[1].Work == "idle" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agents list: %+v", r)
		}
	}
	if r := d.run(t, "agents", "list"); !strings.Contains(r.stdout, "WORK") || !strings.Contains(r.stdout, " idle") {
		t.Errorf("agents list:\n%s", r.stdout)
	}

	// The events stream carries what the agents do: with the stack steady,
	// a task alone brings new events (working, then idle).
	ectx, ecancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer ecancel()
	events := make(chan []api.Agent, 64)
	go func() {
		_ = d.client().Events(ectx, func(st api.Status) bool { events <- st.Agents; return true })
	}()
	if first := <-events; len(first) != 2 || first[1].Name != "agent-2" || first[1].Work != "idle" {
		t.Errorf("the first event's agents: %+v", first)
	}
	askAgent(t, d.env, "agent-2", "one more", 30*time.Second)
	select {
	case agents := <-events:
		if len(agents) != 2 || agents[1].Work == "" {
			t.Errorf("an event after a task: %+v", agents)
		}
	case <-ectx.Done():
		t.Error("no event after a task")
	}
	ecancel()

	// Nothing to cancel: an idle agent says so.
	if r := d.run(t, "agents", "cancel", "agent-2"); r.code != 0 {
		t.Errorf("agents cancel: %+v", r)
	}
	waitTail(t, d, "agent-2 → user: (nothing to cancel")

	// A message from standard input, as a file would be.
	if r := runIn(t, d.dir, d.env, "@agent-1 a task\nfrom a file\n", "chat", "send", "#general"); r.code != 0 {
		t.Errorf("chat send from stdin: %+v", r)
	}
}

// waitTail waits until the chat's last messages (`chat tail -n 5`) hold want.
func waitTail(t *testing.T, d *daemonEnv, want string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r := d.run(t, "chat", "tail", "-n", "5")
		if strings.Contains(r.stdout, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the chat:\n%s", want, r.stdout)
		}
	}
}
