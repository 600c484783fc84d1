package component

import (
	"context"
	"crypto/ed25519"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/chat"
)

// TestAskAgentAsides: the engine's own asks of an agent (/diff, /files,
// /bundle, for `agents diff` and `export`) and their answers reach the
// asker, but not the chat's tail, its history or its followers, where the
// user's own direct messages and the agent's answers to them stay. A real
// chat server on 127.0.0.1, the agent a real client.
func TestAskAgentAsides(t *testing.T) {
	srv := chat.New(chat.Options{Channels: []string{"#general"}, Observers: []string{UserChatName}})
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = srv.Serve(ctx, ln) }()
	url := "ws://" + ln.Addr().String()

	key, _ := chat.NewKey()
	l := &UserChat{URL: url, Channels: []string{"#general"}, Key: func() ed25519.PrivateKey { return key },
		History: t.TempDir() + "/chat-history.jsonl"}
	if _, err := l.LoadHistory(); err != nil {
		t.Fatal(err)
	}
	go l.Watch(ctx)

	agent, err := chat.Dial(ctx, url, chat.DialOptions{Name: "agent-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	if err := agent.Join(ctx, "#general"); err != nil {
		t.Fatal(err)
	}
	go func() { // the agent: /diff answered at once, anything else too
		for {
			f, err := agent.Read(ctx)
			if err != nil {
				return
			}
			if f.Type != chat.TypeMsg || f.FromName != UserChatName {
				continue
			}
			answer := "hi back"
			if f.Content == "/diff" {
				answer = "diff --git a/x b/x"
			}
			_ = agent.Say(ctx, f.From, answer)
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); !l.Present("agent-1"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("agent-1 never seen in the chat")
		}
	}
	_, follower, stop := l.Follow(0)
	defer stop()

	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	if a, err := l.AskAgent(actx, "agent-1", "/diff"); err != nil || a != "diff --git a/x b/x" {
		t.Fatalf("AskAgent: %q %v", a, err)
	}
	if err := l.Send(ctx, "agent-1", "hello"); err != nil {
		t.Fatal(err)
	}
	var followed []string
	for len(followed) < 2 {
		select {
		case m := <-follower:
			followed = append(followed, m.From+": "+m.Content)
		case <-time.After(10 * time.Second):
			t.Fatalf("the follower got %q", followed)
		}
	}
	var tail []string
	for _, m := range l.Tail(100) {
		tail = append(tail, m.From+": "+m.Content)
	}
	// In either order: the server may deliver the answer before the echo
	// of the question.
	slices.Sort(followed)
	slices.Sort(tail)
	want := []string{"agent-1: hi back", "user: hello"}
	if !slices.Equal(followed, want) || !slices.Equal(tail, want) {
		t.Errorf("the follower got %q, the tail %q; want %q (no ask, no answer to one)", followed, tail, want)
	}
	again := &UserChat{History: l.History}
	_, _ = again.LoadHistory()
	if h := again.Tail(100); len(h) != 2 || strings.Contains(h[0].Content+h[1].Content, "diff") {
		t.Errorf("the history: %+v", h)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.asks["agent-1"]) != 0 {
		t.Errorf("asks left: %d", len(l.asks["agent-1"]))
	}
}
