package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/component"
	"github.com/thesystem-dev/thesystem/engine/provider/anthropictest"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
)

// toolUpstream is a fake Anthropic Messages API (streamed) that makes the
// agent work: a task asking for proof is answered with a Bash tool use
// that writes and commits a file in the workspace; once the request
// carries the tool's result, the answer quotes it. Every key it got is
// recorded.
type toolUpstream struct {
	url string // where it listens
	// command is what the tool use runs ("" for proofCommand).
	command string
	mu      sync.Mutex
	keys    []string
	bodies  []string
}

// proofCommand runs in the agent's working copy (its directory): a file,
// committed on its branch.
const proofCommand = `echo WORK-DONE > proof.txt && git add proof.txt && git commit -qm proof && ` +
	`git log -1 --format='COMMITTED %s on %D' && cat proof.txt`

func (u *toolUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.keys = append(u.keys, r.Header.Get("X-Api-Key"))
	u.bodies = append(u.bodies, string(body))
	u.mu.Unlock()
	if r.URL.Path != "/v1/messages" {
		http.NotFound(w, r)
		return
	}
	var req struct {
		Model    string `json:"model"`
		Messages []struct {
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	_ = json.Unmarshal(body, &req)
	result := toolResult(req.Messages)
	a := anthropictest.Answer{Model: req.Model, InputTokens: 20, OutputTokens: 12, Text: "Hello from the fake upstream"}
	switch {
	case strings.Contains(string(body), "prove it") && result == "":
		cmd := u.command
		if cmd == "" {
			cmd = proofCommand
		}
		a = anthropictest.Answer{Model: req.Model, InputTokens: 20, OutputTokens: 30, Tool: "Bash",
			ToolInput: map[string]string{"command": cmd, "description": "write and commit the proof"}}
	case result != "":
		a.Text = "Done. The tool said: " + result
	}
	anthropictest.Stream(w, a)
}

// gitIn runs git in dir (as a user "u") and returns what it printed,
// trimmed; a failure fails the test.
func gitIn(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "git", append([]string{"-C", dir, "-c", "user.name=u", "-c", "user.email=u@example.com"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// lastKey is the key of the last request.
func (u *toolUpstream) lastKey() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.keys) == 0 {
		return ""
	}
	return u.keys[len(u.keys)-1]
}

// toolResult is the text of the last tool_result in the messages, or "".
func toolResult(msgs []struct {
	Content json.RawMessage `json:"content"`
}) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		var blocks []struct {
			Type    string          `json:"type"`
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(msgs[i].Content, &blocks) != nil {
			continue
		}
		for _, b := range blocks {
			if b.Type != "tool_result" {
				continue
			}
			var s string
			if json.Unmarshal(b.Content, &s) == nil {
				return strings.TrimSpace(s)
			}
			var parts []struct{ Text string }
			_ = json.Unmarshal(b.Content, &parts)
			var all []string
			for _, p := range parts {
				all = append(all, p.Text)
			}
			return strings.TrimSpace(strings.Join(all, " "))
		}
	}
	return ""
}

// startWorkStack starts a stack of n agents that run the real claude-code
// (its linux package THESYSTEM_TEST_CLAUDE_PKG, where the engine keeps
// what it downloads) in the agents' Debian image (on the prebuilt base,
// THESYSTEM_DEBIAN_BASE) against a toolUpstream on 127.0.0.1, with a
// planted key stored; it is stopped when the test ends.
func startWorkStack(t testing.TB, agents int) (d *daemonEnv, up *toolUpstream, planted string) {
	t.Helper()
	d, up, planted = startRuntimeStack(t, fmt.Sprintf("  agents: %d\n", agents), nil)
	return d, up, planted
}

// runtimePackage puts a runtime's linux package (a file make runtimes
// packed, named by the variable pkgVar) where the engine keeps what it
// downloaded (it checks and uses it); not an override, which gets the
// minimal image of a test's stand-in.
func runtimePackage(t testing.TB, d *daemonEnv, pkgVar string, pkg sandbox.RuntimePackage) {
	t.Helper()
	file := os.Getenv(pkgVar)
	if file == "" {
		if os.Getenv("THESYSTEM_TEST_CLAUDE") != "" {
			t.Fatalf("THESYSTEM_TEST_CLAUDE is set but %s is not (make runtimes packs the runtimes' linux packages)", pkgVar)
		}
		t.Skipf("%s not set (make runtimes packs the runtimes' linux packages)", pkgVar)
	}
	state := envValue(d.env, "THESYSTEM_STATE_DIR")
	downloaded := filepath.Join(state, "runtimes", pkg.FileName())
	if err := os.MkdirAll(filepath.Dir(downloaded), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(file, downloaded); err != nil {
		if out, err := exec.CommandContext(t.Context(), "cp", file, downloaded).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
	}
}

// startRuntimeStack starts a stack whose swarm section is swarm (under
// "swarm:"), with claude-code's package and, when codex is not nil,
// codex's, that upstream as openai's and a planted OpenAI key.
func startRuntimeStack(t testing.TB, swarm string, codex *codexUpstream) (d *daemonEnv, up *toolUpstream, planted string) {
	t.Helper()
	base := os.Getenv("THESYSTEM_DEBIAN_BASE") // built by make unit: no test reaches the Debian archive
	if base == "" {
		if os.Getenv("THESYSTEM_TEST_PODMAN") == "1" {
			t.Fatal("THESYSTEM_TEST_PODMAN=1 but THESYSTEM_DEBIAN_BASE is not set (make unit builds it)")
		}
		t.Skip("THESYSTEM_DEBIAN_BASE not set (go run ./packaging/debianbase builds it)")
	}
	d = newDaemonEnv(t)
	pkg, err := sandbox.ClaudeCodePackage(component.ClaudeCodeVersion, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	runtimePackage(t, d, "THESYSTEM_TEST_CLAUDE_PKG", pkg)
	upstreams := ""
	if codex != nil {
		cpkg, err := sandbox.CodexPackage(component.CodexVersion, runtime.GOARCH)
		if err != nil {
			t.Fatal(err)
		}
		runtimePackage(t, d, "THESYSTEM_TEST_CODEX_PKG", cpkg)
		fake := httptest.NewServer(codex)
		t.Cleanup(fake.Close)
		upstreams = "    openai: " + fake.URL + "\n"
	}
	d.env = append(d.env, "THESYSTEM_CLAUDE_BIN=", "THESYSTEM_DEBIAN_BASE="+base) // the last one wins
	planted = "sk-ant-api03-PLANTEDworkKEY0123456789abcdefgh"
	up = &toolUpstream{}
	fake := httptest.NewServer(up)
	t.Cleanup(fake.Close)
	up.url = fake.URL
	write(t, filepath.Join(d.dir, "thesystem.yaml"), fmt.Sprintf("proxy:\n  port: %d\n  upstreams:\n    anthropic: %s\n%sserver:\n  port: %d\n  dashboard: %d\n"+
		"swarm:\n%s  mission: MISSION-w0rk keep the tests green\nchannels: ['#general']\n", d.port, fake.URL, upstreams, d.chatPort, d.dashPort, swarm))
	if r := runIn(t, d.dir, d.env, planted, "keys", "set", "anthropic"); r.code != 0 {
		t.Fatalf("keys set: %+v", r)
	}
	if codex != nil {
		if r := runIn(t, d.dir, d.env, codex.key, "keys", "set", "openai"); r.code != 0 {
			t.Fatalf("keys set openai: %+v", r)
		}
	}
	t0 := time.Now()
	if r := d.run(t, "start"); r.code != 0 {
		t.Fatalf("start: %+v", r)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = newCmd(ctx, d.dir, d.env, "stop").Run()
	})
	t.Logf("start, with the agents' image built: %s", time.Since(t0).Round(time.Second))
	return d, up, planted
}

// TestAgentWorks: the real claude-code, in the agents' Debian image (built
// by the engine with mmdebstrap), takes a task from `chat send`, works
// without asking (a shell and git in its sandbox, no network, no key),
// posts what it does, and answers with the tool's output; its commit is in
// its workspace; the stored key reached the fake upstream only.
func TestAgentWorks(t *testing.T) {
	d, up, planted := startWorkStack(t, 2)

	answer := askAgent(t, d.env, "agent-1", "prove it", 3*time.Minute)
	if !strings.Contains(answer, "COMMITTED proof on HEAD -> thesystem/agent-1") || !strings.Contains(answer, "WORK-DONE") {
		t.Fatalf("the agent answered %q", answer)
	}
	// The task's outcome, as the proxy counted it (two requests: the tool
	// use, then the answer).
	if !regexp.MustCompile(`\n— done in [0-9.hms]+ · 1 file changed, 1 commit · [1-9][0-9]* tokens in 2 requests \(the proxy's count\)$`).MatchString(answer) {
		t.Errorf("the answer's outcome line: %q", answer)
	}
	r := d.run(t, "chat", "tail", "-n", "20")
	if !strings.Contains(r.stdout, "agent-1: ⋯ running: echo WORK-DONE > proof.txt") {
		t.Errorf("no progress line before the answer:\n%s", r.stdout)
	}
	// A second agent does the same on its own branch: the diff warns of it.
	if a := askAgent(t, d.env, "agent-2", "prove it", 3*time.Minute); !strings.Contains(a, "COMMITTED proof on HEAD -> thesystem/agent-2") {
		t.Fatalf("agent-2 answered %q", a)
	}
	// What it changed, as the user sees it: its commit on its branch, over
	// the project's baseline (the project is not a git repository).
	diff := d.run(t, "agents", "diff", "agent-1")
	for _, want := range []string{"Branch thesystem/agent-1, since ", "commits:\n", " proof\n", "proof.txt | 1 +", "+WORK-DONE",
		"warning: agent-2's branch changes the same files: proof.txt\n"} {
		if diff.code != 0 || !strings.Contains(diff.stdout, want) {
			t.Errorf("agents diff lacks %q: %+v", want, diff)
		}
	}
	stat := d.run(t, "agents", "diff", "agent-1", "--stat")
	if stat.code != 0 || !strings.Contains(stat.stdout, "proof.txt | 1 +") || strings.Contains(stat.stdout, "+WORK-DONE") ||
		!strings.HasPrefix(stat.stdout, "warning: agent-2's branch changes the same files: proof.txt\n") {
		t.Errorf("agents diff --stat: %+v", stat)
	}
	// Taken back: the branch, into a repository of the user's, without
	// touching its working tree or its current branch.
	scratch := t.TempDir()
	git := func(args ...string) string { t.Helper(); return gitIn(t, scratch, args...) }
	git("init", "-q", "-b", "main")
	write(t, filepath.Join(scratch, "mine.txt"), "my work\n")
	git("add", "mine.txt")
	git("commit", "-qm", "mine")
	write(t, filepath.Join(scratch, "mine.txt"), "my work, not committed\n")
	head := git("rev-parse", "HEAD")
	ex := d.run(t, "agents", "export", "agent-1", "-C", scratch)
	if ex.code != 0 || !strings.Contains(ex.stdout, "created branch thesystem/agent-1 at ") {
		t.Fatalf("agents export: %+v", ex)
	}
	if got := git("show", "thesystem/agent-1:proof.txt"); got != "WORK-DONE" {
		t.Errorf("proof.txt on the exported branch: %q", got)
	}
	if git("rev-parse", "HEAD") != head || git("branch", "--show-current") != "main" || git("status", "--porcelain") != "M mine.txt" {
		t.Errorf("the user's repository moved: HEAD %s branch %s status %q", git("rev-parse", "HEAD"), git("branch", "--show-current"), git("status", "--porcelain"))
	}
	if ex := d.run(t, "agents", "export", "agent-1", "-C", scratch); ex.code == 0 || !strings.Contains(ex.stderr, "branch thesystem/agent-1 exists") {
		t.Errorf("a second export without --force: %+v", ex)
	}
	if ex := d.run(t, "agents", "export", "agent-1", "-C", scratch, "--force"); ex.code != 0 {
		t.Errorf("export --force: %+v", ex)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "the stack's project (" + d.dir + "): not in a git repository (give -C DIR"},
		{[]string{"-C", "/nonexistent"}, "-C /nonexistent: no such directory"},
		{[]string{"-C", scratch, "--branch", "main", "--force"}, "main is checked out in " + scratch + ": git never overwrites the branch you are on"},
		{[]string{"-C", scratch, "--branch", "refs/tags/x"}, "--branch refs/tags/x: not a valid branch name"},
	} {
		if ex := d.run(t, append([]string{"agents", "export", "agent-1"}, tc.args...)...); ex.code == 0 || !strings.Contains(ex.stderr, tc.want) {
			t.Errorf("export %v: %+v, want %q", tc.args, ex, tc.want)
		}
	}
	if ex := d.run(t, "agents", "export", "nobody", "-C", scratch); ex.code == 0 || !strings.Contains(ex.stderr, `no agent "nobody" in this stack (its agents: agent-1, agent-2)`) {
		t.Errorf("export of an unknown agent: %+v", ex)
	}
	if ex := d.run(t, "agents", "export", "agent-1", "-C", scratch, "--branch", "review/agent-1"); ex.code != 0 || git("rev-parse", "review/agent-1") != git("rev-parse", "thesystem/agent-1") {
		t.Errorf("export --branch: %+v", ex)
	}
	t.Logf("the loop, as a user sees it:\n$ thesystem chat tail\n%s$ thesystem agents diff agent-1\n%s\n$ thesystem agents export agent-1\n%s%s",
		d.run(t, "chat", "tail", "-n", "20").stdout, diff.stdout, ex.stdout, ex.stderr)

	// The commit is in the agent's working copy, in its workspace (its
	// volume), on the host; the project itself is untouched.
	out, err := d.podman(t, "volume", "inspect", "--format", "{{.Mountpoint}}", "thesystem-"+stackOf(t, d)+"-agent-1")
	if err != nil {
		t.Fatalf("volume inspect: %v %s", err, out)
	}
	ws := strings.TrimSpace(string(out))
	if b, err := os.ReadFile(filepath.Join(ws, "project", "proof.txt")); err != nil || string(b) != "WORK-DONE\n" {
		t.Errorf("proof.txt in the working copy: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(ws, "project", "thesystem.yaml")); err != nil {
		t.Errorf("the working copy lacks the project's files: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.dir, "proof.txt")); err == nil {
		t.Error("the agent wrote into the project")
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	sawMission := false
	for i, k := range up.keys {
		if k != planted {
			t.Errorf("request %d reached the upstream without the stored key", i)
		}
		sawMission = sawMission || strings.Contains(up.bodies[i], "MISSION-w0rk")
	}
	if !sawMission {
		t.Error("the mission was not in the agent's requests (its system prompt)")
	}
	// No planted key in the workspace, the agent's logs, the chat.
	logs := d.run(t, "logs", "-n", "2000")
	tail := d.run(t, "chat", "tail", "-n", "1000", "--json")
	leak := ""
	_ = filepath.WalkDir(ws, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), planted) {
				leak = p
			}
		}
		return nil
	})
	if leak != "" || strings.Contains(logs.stdout, planted) || strings.Contains(tail.stdout, planted) {
		t.Errorf("the planted key leaked: %q, logs %v, chat %v", leak, strings.Contains(logs.stdout, planted), strings.Contains(tail.stdout, planted))
	}
}
