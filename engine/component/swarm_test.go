package component

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
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

// guestRecorder stands in for the VM (the real one: the real-VM test): it
// records what it was given to build with.
type guestRecorder struct {
	runtimes []sandbox.Runtime
}

func (g *guestRecorder) AgentImage(_ context.Context, runtimes []sandbox.Runtime, _ io.Writer) (string, error) {
	g.runtimes = runtimes
	return sandbox.DevRepo + ":guest", nil
}

// TestForeignHost: on a host treated as foreign (a Mac), every step that
// would use the host's own Linux is refused with a reason: vm.driver none
// (host podman, ldd, mmdebstrap) and a runtime binary of the host's; in
// the VM the runtime is claude-code's linux package for the guest, downloaded
// from the registry (checked), never the host's binary.
func TestForeignHost(t *testing.T) {
	paths := config.Paths{StateDir: t.TempDir()}
	env := Env{Config: &config.Loaded{}, Paths: paths, Logs: supervise.NewLogs(100)}
	s := &Swarm{Env: env, Foreign: true}
	if _, err := s.agentImage(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "THESYSTEM_FOREIGN_HOST") || !supervise.IsPermanent(err) {
		t.Errorf("vm.driver none on a foreign host: %v", err)
	}
	s = &Swarm{Env: env, Foreign: true, Guest: &guestRecorder{}, RuntimeBinary: "/usr/local/bin/claude"}
	if _, err := s.agentImage(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "THESYSTEM_CLAUDE_BIN") {
		t.Errorf("a host runtime binary on a foreign host: %v", err)
	}

	tgz, codexTgz := os.Getenv("THESYSTEM_TEST_CLAUDE_PKG"), os.Getenv("THESYSTEM_TEST_CODEX_PKG")
	if tgz == "" || codexTgz == "" {
		t.Skip("THESYSTEM_TEST_CLAUDE_PKG and THESYSTEM_TEST_CODEX_PKG not set (make runtimes packs the runtimes' linux packages)")
	}
	pkg, err := sandbox.ClaudeCodePackage(ClaudeCodeVersion, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	codex, err := sandbox.CodexPackage(CodexVersion, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int32
	registry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		switch r.URL.Path {
		case pkg.TarballURL(""):
			http.ServeFile(w, r, tgz)
		case codex.TarballURL(""):
			http.ServeFile(w, r, codexTgz)
		default:
			http.NotFound(w, r)
		}
	}))
	defer registry.Close()
	g := &guestRecorder{}
	mixed := &config.Loaded{Config: config.Config{Swarm: config.Swarm{Backends: []config.BackendGroup{
		{Backend: config.BackendClaude, Count: 1}, {Backend: config.BackendCodex, Count: 1}, {Backend: config.BackendClaude, Count: 1}}}}}
	env.Config = mixed
	s = &Swarm{Env: env, Foreign: true, Guest: g, Registry: registry.URL}
	for range 2 {
		ref, err := s.agentImage(t.Context(), nil)
		if err != nil || ref != sandbox.DevRepo+":guest" {
			t.Fatalf("in the VM: %s %v", ref, err)
		}
	}
	want := []sandbox.Runtime{{Command: "claude", File: filepath.Join(paths.RuntimesDir(), pkg.FileName()), Package: pkg},
		{Command: "codex", File: filepath.Join(paths.RuntimesDir(), codex.FileName()), Package: codex}}
	if !reflect.DeepEqual(g.runtimes, want) || requests.Load() != 2 {
		t.Errorf("the VM got %+v, %d downloads", g.runtimes, requests.Load())
	}
}

// TestRuntimeArgv: each backend's runtime, with the model of its line of
// swarm.backends, the mission as its system prompt, and without asking
// unless swarm.permissions is ask.
func TestRuntimeArgv(t *testing.T) {
	for _, tc := range []struct {
		name, backend, model, mission string
		ask                           bool
		want                          string
	}{
		{"claude", config.BackendClaude, "", "", false, "claude -p --output-format stream-json --verbose --dangerously-skip-permissions"},
		{"claude model mission", config.BackendClaude, "claude-sonnet-4-5", "be brief", false,
			"claude -p --output-format stream-json --verbose --dangerously-skip-permissions --model claude-sonnet-4-5 --append-system-prompt be brief"},
		{"claude ask", config.BackendClaude, "", "", true, "claude -p --output-format stream-json --verbose"},
		{"codex", config.BackendCodex, "gpt-5-codex", "say \"hi\"\nthen stop", false,
			"codex exec --json --skip-git-repo-check --color never -c check_for_update_on_startup=false -c analytics.enabled=false " +
				"--dangerously-bypass-approvals-and-sandbox --model gpt-5-codex -c developer_instructions=\"say \\\"hi\\\"\\nthen stop\""},
		{"codex ask", config.BackendCodex, "", "", true,
			"codex exec --json --skip-git-repo-check --color never -c check_for_update_on_startup=false -c analytics.enabled=false --sandbox read-only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(runtimeArgv(tc.backend, tc.model, tc.mission, tc.ask), " "); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestSwarmCommands: the image holds each runtime the swarm's backends
// run, once.
func TestSwarmCommands(t *testing.T) {
	for _, tc := range []struct {
		name  string
		swarm config.Swarm
		want  string
	}{
		{"default", config.Swarm{Backend: config.BackendClaude, Agents: 2}, "claude"},
		{"codex", config.Swarm{Backend: config.BackendCodex, Agents: 2}, "codex"},
		{"mixed", config.Swarm{Backends: []config.BackendGroup{{Backend: "codex", Count: 1}, {Backend: "claude", Count: 1}, {Backend: "codex", Count: 2}}}, "codex claude"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Swarm{Env: Env{Config: &config.Loaded{Config: config.Config{Swarm: tc.swarm}}}}
			if got := strings.Join(s.commands(), " "); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
