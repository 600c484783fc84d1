package component

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/supervise"
)

// TestImageReadyOrdering: the swarm is ready only once its image is, and
// only while its run lasts; an agent started before that refuses without
// touching podman, the proxy or the chat (the supervisor retries it).
func TestImageReadyOrdering(t *testing.T) {
	release := make(chan struct{})
	env := Env{Config: &config.Loaded{}, Logs: supervise.NewLogs(10)}
	s := &Swarm{Env: env, Build: func(ctx context.Context) (string, error) {
		select {
		case <-release:
			return "localhost/thesystem-agent-test:1", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}}
	spec := s.Spec()
	a := &Agent{Env: env, Name: "agent-1", Backend: config.BackendClaude, Swarm: s, Tokens: panicTokens{}, Chat: nil}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- spec.Service.Serve(ctx) }()
	if err := spec.Ready.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "building the agent image") {
		t.Fatalf("ready while building: %v", err)
	}
	if err := a.serve(t.Context()); err == nil || err.Error() != "no agent image yet" {
		t.Fatalf("an agent before the image: %v", err)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for spec.Ready.Check(t.Context()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("not ready after the build")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if ref, ok := s.Image(); !ok || ref != "localhost/thesystem-agent-test:1" {
		t.Errorf("image %q %v", ref, ok)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if _, ok := s.Image(); ok {
		t.Error("the image stays ready after the swarm stopped")
	}
	if err := spec.Ready.Check(t.Context()); err == nil {
		t.Error("ready after the swarm stopped")
	}
}

// panicTokens fail the test's agent if it got as far as a token.
type panicTokens struct{}

func (panicTokens) Issue(string) (string, error) {
	return "", errors.New("issued a token before the image")
}
func (panicTokens) Revoke(string) {}
