package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/provider/openaitest"
)

// codexUpstream is a fake OpenAI Responses API (streamed), as the Codex
// CLI calls it: a task asking for proof is answered with a call of codex's
// exec_command that writes and commits a file; once the request carries
// the command's output, the answer quotes it. Every request's key, model
// and body are recorded.
type codexUpstream struct {
	key    string // the real key it expects
	mu     sync.Mutex
	auths  []string
	models []string
	bodies []string
}

func (u *codexUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Model string            `json:"model"`
		Input []json.RawMessage `json:"input"`
	}
	_ = json.Unmarshal(body, &req)
	u.mu.Lock()
	u.auths = append(u.auths, r.Header.Get("Authorization"))
	u.models = append(u.models, req.Model)
	u.bodies = append(u.bodies, string(body))
	u.mu.Unlock()
	if r.URL.Path != "/v1/responses" {
		http.NotFound(w, r)
		return
	}
	// The output of the command it ran, in this turn (after the last
	// message of the user's).
	output, asked := "", ""
	for _, raw := range req.Input {
		var it struct {
			Type    string `json:"type"`
			Role    string `json:"role"`
			Output  string `json:"output"`
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		}
		_ = json.Unmarshal(raw, &it)
		switch {
		case it.Type == "function_call_output":
			output = it.Output
		case it.Role == "user" && len(it.Content) > 0 && !strings.HasPrefix(it.Content[0].Text, "<"):
			output, asked = "", it.Content[0].Text
		}
	}
	a := openaitest.Answer{Model: req.Model, InputTokens: 300, CachedTokens: 200, OutputTokens: 20, Text: "Hello from the fake OpenAI"}
	switch {
	case strings.Contains(asked, "prove it") && output == "":
		args, _ := json.Marshal(map[string]string{"cmd": proofCommand})
		a.Call, a.Args = "exec_command", string(args)
	case output != "":
		a.Text = "Done. The command said: " + output
	}
	openaitest.Stream(w, a)
}

// TestCodexAgentWorks: a mixed swarm, one claude agent and one codex
// agent (the real Codex CLI, its linux package, in the same agents'
// image), each with the model its line of swarm.backends gives. The codex
// agent takes a task from the chat, runs a command without asking (its
// progress posted), commits on its own branch and answers; its requests
// reach the fake OpenAI upstream on 127.0.0.1 through the proxy's openai
// route with the stored key (the agent holds only its token), counted per
// agent and model with the cached input apart; its next task continues
// the same conversation; diff and export work as for claude; no planted
// key anywhere an agent or a log could show it.
func TestCodexAgentWorks(t *testing.T) {
	codex := &codexUpstream{key: "sk-proj-PLANTEDcodexKEY0123456789abcdefgh"}
	d, up, planted := startRuntimeStack(t, "  backends:\n    - backend: claude\n      count: 1\n      model: claude-sonnet-4-5\n"+
		"    - backend: codex\n      count: 1\n      model: gpt-5-codex\n", codex)

	answer := askAgent(t, d.env, "agent-2", "prove it", 3*time.Minute)
	if !strings.Contains(answer, "COMMITTED proof on HEAD -> thesystem/agent-2") || !strings.Contains(answer, "WORK-DONE") {
		t.Fatalf("the codex agent answered %q", answer)
	}
	if !regexp.MustCompile(`\n— done in [0-9.hms]+ · 1 file changed, 1 commit · [1-9][0-9]* tokens in 2 requests \(the proxy's count\)$`).MatchString(answer) {
		t.Errorf("the answer's outcome line: %q", answer)
	}
	if r := d.run(t, "chat", "tail", "-n", "20"); !strings.Contains(r.stdout, "agent-2: ⋯ running: echo WORK-DONE > proof.txt") {
		t.Errorf("no progress line before the answer:\n%s", r.stdout)
	} else {
		t.Logf("$ thesystem chat tail\n%s", r.stdout)
	}
	// The claude agent of the same swarm works beside it.
	if a := askAgent(t, d.env, "agent-1", "prove it", 3*time.Minute); !strings.Contains(a, "COMMITTED proof on HEAD -> thesystem/agent-1") {
		t.Fatalf("the claude agent answered %q", a)
	}
	// Its next task continues the conversation: the request carries the
	// first task.
	if a := askAgent(t, d.env, "agent-2", "what did you do?", 3*time.Minute); !strings.Contains(a, "Hello from the fake OpenAI") {
		t.Errorf("the second task: %q", a)
	}
	codex.mu.Lock()
	last := codex.bodies[len(codex.bodies)-1]
	for i, auth := range codex.auths {
		if auth != "Bearer "+codex.key {
			t.Errorf("request %d reached the OpenAI upstream without the stored key", i)
		}
		if codex.models[i] != "gpt-5-codex" {
			t.Errorf("request %d asked for model %q, not swarm.backends[1].model", i, codex.models[i])
		}
	}
	sawMission := strings.Contains(codex.bodies[0], "MISSION-w0rk")
	codex.mu.Unlock()
	if !strings.Contains(last, "prove it") || !strings.Contains(last, "what did you do?") {
		t.Errorf("the second task is not in the first one's conversation: %.300s", last)
	}
	if !sawMission {
		t.Error("the mission was not in the codex agent's requests (its developer instructions)")
	}
	up.mu.Lock()
	for i, b := range up.bodies {
		if !strings.Contains(b, `"model":"claude-sonnet-4-5"`) {
			t.Errorf("claude request %d did not ask for swarm.backends[0].model: %.200s", i, b)
		}
	}
	up.mu.Unlock()

	// Counted by the proxy, per agent, provider and model.
	r := d.run(t, "usage", "--json", "--agent", "agent-2")
	var u api.Usage
	if err := json.Unmarshal([]byte(r.stdout), &u); err != nil || r.code != 0 {
		t.Fatalf("usage: %+v %v", r, err)
	}
	if len(u.Rows) != 1 || u.Rows[0].Provider != "openai" || u.Rows[0].Model != "gpt-5-codex" || u.Rows[0].Requests != 3 ||
		u.Rows[0].TokensIn != 900 || u.Rows[0].CacheRead != 600 || u.Rows[0].TokensOut != 60 || u.Rows[0].CostUSD == nil || *u.Rows[0].CostUSD <= 0 {
		t.Errorf("usage of the codex agent: %+v", u.Rows)
	}
	t.Logf("$ thesystem usage\n%s", d.run(t, "usage").stdout)
	// Its work, as for claude: the diff and the export of its branch.
	if diff := d.run(t, "agents", "diff", "agent-2", "--stat"); diff.code != 0 || !strings.Contains(diff.stdout, "proof.txt | 1 +") {
		t.Errorf("agents diff --stat agent-2: %+v", diff)
	}
	scratch := t.TempDir()
	gitIn(t, scratch, "init", "-q", "-b", "main")
	if ex := d.run(t, "agents", "export", "agent-2", "-C", scratch); ex.code != 0 || gitIn(t, scratch, "show", "thesystem/agent-2:proof.txt") != "WORK-DONE" {
		t.Errorf("agents export agent-2: %+v", ex)
	}

	// No planted key in its workspace, its container's configuration, the
	// logs, the chat.
	out, err := d.podman(t, "volume", "inspect", "--format", "{{.Mountpoint}}", "thesystem-"+stackOf(t, d)+"-agent-2")
	if err != nil {
		t.Fatalf("volume inspect: %v %s", err, out)
	}
	ws := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(ws, ".codex", "sessions")); err != nil {
		t.Errorf("codex's sessions are not kept in the workspace: %v", err)
	}
	inspect, _ := d.podman(t, "inspect", "thesystem-"+stackOf(t, d)+"-agent-2")
	logs := d.run(t, "logs", "-n", "2000")
	tail := d.run(t, "chat", "tail", "-n", "1000", "--json")
	for _, key := range []string{planted, codex.key} {
		leak := ""
		_ = filepath.WalkDir(ws, func(p string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				if b, _ := os.ReadFile(p); strings.Contains(string(b), key) {
					leak = p
				}
			}
			return nil
		})
		if leak != "" || strings.Contains(string(inspect), key) || strings.Contains(logs.stdout, key) || strings.Contains(tail.stdout, key) {
			t.Errorf("a planted key leaked: workspace %q, inspect %v, logs %v, chat %v", leak,
				strings.Contains(string(inspect), key), strings.Contains(logs.stdout, key), strings.Contains(tail.stdout, key))
		}
	}
	if !strings.Contains(string(inspect), `"--runtime"`) || !strings.Contains(string(inspect), "--dangerously-bypass-approvals-and-sandbox") {
		t.Errorf("the codex agent's container does not run codex exec without asking:\n%.2000s", inspect)
	}
}
