package sandbox

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/thesystem-dev/thesystem/engine/chat"
	"github.com/thesystem-dev/thesystem/engine/guest"
	"github.com/thesystem-dev/thesystem/engine/provider/anthropictest"
	"github.com/thesystem-dev/thesystem/engine/proxy"
	"github.com/thesystem-dev/thesystem/engine/secrets"
)

// fakeAnthropic answers /v1/messages with a streamed reply and records the
// key every request carried.
type fakeAnthropic struct {
	mu     sync.Mutex
	keys   []string
	reqs   []string
	bodies []string // of /v1/messages
}

func (f *fakeAnthropic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.keys = append(f.keys, r.Header.Get("X-Api-Key"))
	f.reqs = append(f.reqs, r.Method+" "+r.URL.Path)
	if r.URL.Path == "/v1/messages" {
		f.bodies = append(f.bodies, string(body))
	}
	f.mu.Unlock()
	if r.URL.Path != "/v1/messages" {
		http.NotFound(w, r)
		return
	}
	var req struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	_ = json.Unmarshal(body, &req)
	msg := map[string]any{"id": "msg_1", "type": "message", "role": "assistant", "model": req.Model,
		"content": []any{}, "stop_reason": nil, "stop_sequence": nil, "usage": map[string]any{"input_tokens": 12, "output_tokens": 1}}
	if !req.Stream {
		msg["content"] = []any{map[string]any{"type": "text", "text": "Hello from the fake upstream"}}
		msg["stop_reason"] = "end_turn"
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(msg)
		return
	}
	a := anthropictest.Answer{Model: req.Model, InputTokens: 12, OutputTokens: 6, Text: "Hello from the fake upstream"}
	if strings.Contains(string(body), "USE-A-TOOL") && !strings.Contains(string(body), "tool_result") {
		// The first turn of a task that needs a tool: run a command.
		a = anthropictest.Answer{Model: req.Model, InputTokens: 12, OutputTokens: 9, Tool: "Bash",
			ToolInput: map[string]string{"command": "echo WORK-DONE > proof.txt", "description": "prove it"}}
	}
	anthropictest.Stream(w, a)
}

// TestClaudeCodeInContainer runs the real claude-code binary in an agent
// container: `claude -p` goes through the in-container init's loopback
// relay to the real key proxy on the host, which calls a fake Anthropic
// API on 127.0.0.1 with the real key. THESYSTEM_TEST_CLAUDE names the
// binary (`make runtimes` installs it from npm).
func TestClaudeCodeInContainer(t *testing.T) {
	claudeBin := os.Getenv("THESYSTEM_TEST_CLAUDE")
	if claudeBin == "" {
		t.Skip("THESYSTEM_TEST_CLAUDE not set (make runtimes installs claude-code)")
	}
	svc := startPodman(t)
	p, err := Connect(t.Context(), svc.socket)
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(t.TempDir(), "claude.tar")
	f, _ := os.Create(tarPath)
	if err := RuntimeRootfs(t.Context(), map[string]string{"claude": claudeBin}, 1000, 1000, f); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	const ref = "localhost/thesystem-test:claude"
	if err := p.ImportImage(tarPath, ref); err != nil {
		t.Fatal(err)
	}

	const planted = "sk-ant-api03-PLANTEDclaudeKEY0123456789abcdef"
	up := &fakeAnthropic{}
	upstream := httptest.NewServer(up)
	defer upstream.Close()
	audit := &strings.Builder{}
	var auditMu sync.Mutex
	px, err := proxy.New(proxy.Options{Upstreams: map[string]string{"anthropic": upstream.URL}, Audit: writerFunc(func(b []byte) (int, error) {
		auditMu.Lock()
		defer auditMu.Unlock()
		return audit.Write(b)
	})})
	if err != nil {
		t.Fatal(err)
	}
	_ = px.SetKeys(map[string]secrets.Key{"anthropic": secrets.NewKey(planted)})
	token, _ := px.Tokens().Issue("agent-1")

	run, err := os.MkdirTemp("", "thesystem-run")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(run)
	sockets, agentDir := filepath.Join(run, "sockets"), filepath.Join(run, "agent-1")
	for _, d := range []string{run, sockets, agentDir} {
		_ = os.MkdirAll(d, 0o755)
		_ = os.Chmod(d, 0o755)
	}
	tokFile := filepath.Join(agentDir, guest.TokenFile)
	_ = os.WriteFile(tokFile, []byte(token+"\n"), 0o400)
	_ = os.Chown(tokFile, 1000, 1000)
	var lc net.ListenConfig
	pl, err := lc.Listen(t.Context(), "unix", filepath.Join(sockets, guest.ProxySocket))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := lc.Listen(t.Context(), "unix", filepath.Join(sockets, guest.ChatSocket))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{guest.ProxySocket, guest.ChatSocket} {
		_ = os.Chmod(filepath.Join(sockets, s), 0o666)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = px.Serve(ctx, pl) }()
	go func() { _ = chat.New(chat.Options{Channels: []string{"#general"}}).Serve(ctx, cl) }()

	initBin := filepath.Join(t.TempDir(), "thesystem")
	buildStatic(t, "../../app", initBin)
	_ = os.Chmod(filepath.Dir(initBin), 0o755)

	// Two tasks, as the agent runs them: autonomous, the mission as the
	// system prompt, the second continuing the first's conversation (kept
	// under $HOME, the workspace volume).
	const sessionID = "0b1c2d3e-4f50-4617-8a9b-0c1d2e3f4a5b"
	runClaude := func(task string, args ...string) (string, string) {
		t.Helper()
		argv := append(append([]string{"claude", "-p", "--dangerously-skip-permissions"}, args...), "--model", "claude-test-model", task)
		spec := AgentSpec{
			Agent: "agent-1", Stack: "test", Image: ref, InitBinary: initBin, SocketDir: sockets, AgentDir: agentDir,
			Workspace: "thesystem-test-claude-1", User: "1000:1000", Memory: 1 << 30, CPUs: 1, Pids: 256,
			Argv: argv,
			Env:  []string{"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1", "DISABLE_TELEMETRY=1"},
		}
		id, code, logs := runToExit(t, svc, p, spec)
		if code != 0 {
			t.Fatalf("claude exited %d:\n%s\nupstream saw %v", code, logs, up.reqs)
		}
		data, _ := p.Inspect(id)
		raw, _ := json.Marshal(data)
		return string(logs), string(raw)
	}
	logs, raw := runClaude("Say hello", "--append-system-prompt", "MISSION-7f3: keep the tests green", "--session-id", sessionID)
	if !strings.Contains(logs, "Hello from the fake upstream") {
		t.Errorf("claude's output:\n%s", logs)
	}
	logs2, raw2 := runClaude("And again", "--resume", sessionID)
	if !strings.Contains(logs2, "Hello from the fake upstream") {
		t.Errorf("claude's output, resumed:\n%s", logs2)
	}
	// A task that uses a tool, its events read as the runner reads them:
	// the tool is a progress line, the result the answer.
	logs3, raw3 := runClaude("USE-A-TOOL please", "--output-format", "stream-json", "--verbose")
	var progress []string
	st := guest.ReadStream(strings.NewReader(logs3), func(l string) { progress = append(progress, l) })
	if len(progress) == 0 || progress[0] != "running: echo WORK-DONE > proof.txt" || !strings.Contains(st.Answer, "Hello from the fake upstream") {
		t.Errorf("progress %q, answer %q from:\n%.2000s", progress, st.Answer, logs3)
	}
	logs, raw = logs+logs2+logs3, raw+raw2+raw3
	func() {
		up.mu.Lock()
		defer up.mu.Unlock()
		var first, second string
		for _, b := range up.bodies {
			if strings.Contains(b, "Say hello") && !strings.Contains(b, "And again") && first == "" {
				first = b
			}
			if strings.Contains(b, "And again") {
				second = b
			}
		}
		if !strings.Contains(first, "MISSION-7f3") {
			t.Errorf("the mission is not in the first task's request (system prompt)")
		}
		if !strings.Contains(second, "Say hello") || !strings.Contains(second, "Hello from the fake upstream") {
			t.Errorf("the second task does not carry the first's turns: %.400s", second)
		}
	}()
	up.mu.Lock()
	defer up.mu.Unlock()
	sawMessages := false
	for i, k := range up.keys {
		if k != planted {
			t.Errorf("request %s reached the upstream without the real key", up.reqs[i])
		}
		if up.reqs[i] == "POST /v1/messages" {
			sawMessages = true
		}
	}
	if !sawMessages {
		t.Errorf("no POST /v1/messages reached the upstream: %v", up.reqs)
	}
	auditMu.Lock()
	all := raw + logs + audit.String()
	auditMu.Unlock()
	if strings.Contains(all, "PLANTED") || strings.Contains(raw, token) {
		t.Error("a key or the token leaked into inspect, the logs or the audit")
	}
	t.Logf("upstream saw %v", up.reqs)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

var _ io.Writer = writerFunc(nil)
