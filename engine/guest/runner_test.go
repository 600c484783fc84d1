package guest

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/thesystem-dev/thesystem/engine/chat"
)

func TestRunAgent(t *testing.T) {
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = chat.New(chat.Options{Channels: []string{"#agents"}}).Serve(ctx, ln) }()
	url := "ws://" + ln.Addr().String()

	done := make(chan error, 1)
	go func() {
		done <- RunAgent(ctx, RunnerOptions{
			Name: "agent-1", ChatURL: url, Channels: []string{"#agents"}, Mission: "Keep the tests green.",
			// The runtime stand-in prints its prompt back.
			Argv: []string{"sh", "-c", `printf 'done: %s' "$1"`, "runtime"}, Env: os.Environ(),
		})
	}()

	// A person in the channel.
	ws, resp, err := websocket.Dial(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Body != nil {
		_ = resp.Body.Close()
	}
	defer ws.CloseNow()
	ws.SetReadLimit(4 << 20)
	send := func(v any) { b, _ := json.Marshal(v); _ = ws.Write(t.Context(), websocket.MessageText, b) }
	next := func(typ string) map[string]any {
		rctx, rcancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer rcancel()
		for {
			_, b, err := ws.Read(rctx)
			if err != nil {
				t.Fatalf("waiting for %s: %v", typ, err)
			}
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			if m["type"] == typ {
				return m
			}
		}
	}
	send(map[string]any{"type": "IDENTIFY", "name": "james"})
	next("WELCOME")
	send(map[string]any{"type": "JOIN", "channel": "#agents"})
	j := next("JOINED")
	for len(j["agents"].([]any)) < 2 { // wait for the agent to be in
		time.Sleep(50 * time.Millisecond)
		send(map[string]any{"type": "LIST_AGENTS", "channel": "#agents"})
		j = map[string]any{"agents": next("AGENTS")["list"]}
	}
	send(map[string]any{"type": "MSG", "to": "#agents", "content": "unrelated chatter"})
	send(map[string]any{"type": "MSG", "to": "#agents", "content": "@agent-1 please fix the build"})
	var answer map[string]any
	for {
		m := next("MSG")
		if m["from_name"] == "agent-1" {
			answer = m
			break
		}
	}
	content := answer["content"].(string)
	if answer["to"] != "#agents" || !strings.HasPrefix(content, "done: Keep the tests green.") ||
		!strings.Contains(content, "Message from james in #agents:\n@agent-1 please fix the build") {
		t.Errorf("answer %v", answer)
	}
	if strings.Contains(content, "unrelated chatter") {
		t.Error("the agent answered a message that did not mention it")
	}

	// A task longer than one argument may be (128 KiB) reaches the runtime
	// in a file, whole.
	long := "@agent-1 " + strings.Repeat("a long task; ", 25_000) + "the end"
	send(map[string]any{"type": "MSG", "to": "#agents", "content": long})
	for {
		m := next("MSG")
		if m["from_name"] != "agent-1" {
			continue
		}
		got := m["content"].(string)
		i, j := strings.Index(got, "in the file "), strings.Index(got, " (")
		if i < 0 || j < i {
			t.Fatalf("the long task's answer: %.300q", got)
		}
		b, err := os.ReadFile(got[i+len("in the file ") : j])
		if err != nil || !strings.HasSuffix(strings.TrimSpace(string(b)), "the end") || !strings.Contains(string(b), "Keep the tests green.") {
			t.Errorf("the task file: %d bytes, %v", len(b), err)
		} else {
			_ = os.Remove(got[i+len("in the file ") : j])
		}
		break
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunAgent after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunAgent did not return")
	}
}
