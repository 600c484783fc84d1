package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/thesystem-dev/thesystem/engine/api"
)

// usageUpstream is a fake Anthropic API whose every answer reports the
// same usage: 70 input tokens, 30 read from the cache, 20 output.
func usageUpstream(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"id":"msg_1","type":"message","role":"assistant","model":%q,"content":[{"type":"text","text":"ok"}],`+
		`"stop_reason":"end_turn","usage":{"input_tokens":70,"cache_read_input_tokens":30,"output_tokens":20}}`, req.Model)
}

// agentToken is the token of the agent's current run, as the host handed
// it over.
func agentToken(t *testing.T, env []string, agent string) string {
	t.Helper()
	dir := filepath.Join(envValue(env, "THESYSTEM_RUNTIME_DIR"), "agents", agent)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var tok string
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == "token" && !d.IsDir() {
				if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
					tok = strings.TrimSpace(string(b))
				}
			}
			return nil
		})
		if tok != "" {
			return tok
		}
	}
	t.Fatalf("no token for %s under %s", agent, dir)
	return ""
}

// TestUsage: two agents' requests through the proxy (the official SDK,
// a fake upstream with known counts) add up in `usage --json` per agent
// and model and in total, with a cost from the price table for a known
// model and none for an unknown one; status shows each agent's day; the
// account survives a daemon restart (rebuilt from the audit log), and a
// damaged line in that log is skipped with a warning, not a failure.
func TestUsage(t *testing.T) {
	d := newDaemonEnv(t)
	fake := httptest.NewServer(http.HandlerFunc(usageUpstream))
	defer fake.Close()
	d.env = append(d.env, "THESYSTEM_CLAUDE_BIN="+buildVMCheck(t))
	d.startStack(t, fmt.Sprintf("proxy:\n  port: %d\n  upstreams:\n    anthropic: %s\n  budget:\n    tokens: 10000\n"+
		"server:\n  port: %d\n  dashboard: %d\nswarm:\n  agents: 2\nchannels: ['#general']\n", d.port, fake.URL, d.chatPort, d.dashPort),
		"sk-ant-api03-PLANTEDusage0123456789abcdefgh")
	send := func(agent, model string, n int) {
		t.Helper()
		c := anthropic.NewClient(option.WithBaseURL(fmt.Sprintf("http://127.0.0.1:%d/anthropic", d.port)),
			option.WithAPIKey(agentToken(t, d.env, agent)), option.WithMaxRetries(0))
		for range n {
			if _, err := c.Messages.New(t.Context(), anthropic.MessageNewParams{Model: model, MaxTokens: 10,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}); err != nil {
				t.Fatalf("%s: %v", agent, err)
			}
		}
	}
	send("agent-1", "claude-sonnet-4-5-20250929", 3)
	send("agent-2", "claude-sonnet-4-5-20250929", 2)
	send("agent-2", "mystery-model-1", 1)

	// Each request: In 100 (70 + 30 cache reads), Out 20. A Sonnet 4.5
	// one costs (70×3 + 30×0.3 + 20×15) / 1e6.
	perRequest := (70*3 + 30*0.3 + 20*15) / 1e6
	check := func(when string) {
		t.Helper()
		r := d.run(t, "usage", "--json")
		var u api.Usage
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &u) != nil {
			t.Fatalf("%s: usage: %+v", when, r)
		}
		if u.Total.Requests != 6 || u.Total.TokensIn != 600 || u.Total.TokensOut != 120 || u.Total.CacheRead != 180 || !u.Total.CostPartial ||
			u.Total.CostUSD == nil || math.Abs(*u.Total.CostUSD-5*perRequest) > 1e-9 {
			t.Errorf("%s: total %+v", when, u.Total)
		}
		want := map[string]string{
			"agent-1 claude-sonnet-4-5-20250929": fmt.Sprintf("3 300 60 %.6f", 3*perRequest),
			"agent-2 claude-sonnet-4-5-20250929": fmt.Sprintf("2 200 40 %.6f", 2*perRequest),
			"agent-2 mystery-model-1":            "1 100 20 none",
		}
		for _, row := range u.Rows {
			c := "none"
			if row.CostUSD != nil {
				c = fmt.Sprintf("%.6f", *row.CostUSD)
			}
			got := fmt.Sprintf("%d %d %d %s", row.Requests, row.TokensIn, row.TokensOut, c)
			if k := row.Agent + " " + row.Model; want[k] != got {
				t.Errorf("%s: %s: %s, want %q", when, k, got, want[k])
			}
			delete(want, row.Agent+" "+row.Model)
		}
		if len(want) != 0 || strings.Join(u.Unpriced, ",") != "mystery-model-1" {
			t.Errorf("%s: rows missing %v; unpriced %v", when, want, u.Unpriced)
		}
		// The budget's use, carried across a restart (not a way around it).
		if len(u.Agents) != 2 || u.Agents[0].Budget == nil || u.Agents[0].Budget.Tokens != 10000 || u.Agents[0].Budget.UsedTokens != 360 ||
			u.Agents[0].Budget.UsedRequests != 3 {
			t.Errorf("%s: agents %+v, budget %+v", when, u.Agents, u.Agents[0].Budget)
		}
		table := d.run(t, "usage")
		t.Logf("%s: thesystem usage\n%s", when, table.stdout)
		for _, s := range []string{"agent-1", "mystery-model-1", "TOTAL", "≥ $", "no price for mystery-model-1", "budget "} {
			if !strings.Contains(table.stdout, s) {
				t.Errorf("%s: the table lacks %q:\n%s", when, s, table.stdout)
			}
		}
	}
	check("running")
	st := d.run(t, "status", "--json")
	var s api.Status
	if err := json.Unmarshal([]byte(st.stdout), &s); err != nil || len(s.Agents) != 2 || s.Agents[1].Today == nil || s.Agents[1].Today.Requests != 3 {
		t.Errorf("status: %+v", s.Agents)
	}
	if st := d.run(t, "status"); !strings.Contains(st.stdout, "360 tokens in 3 requests") {
		t.Errorf("status lacks agent-2's day:\n%s", st.stdout)
	}
	if r := d.run(t, "usage", "--agent", "agent-9"); r.code == 0 || !strings.Contains(r.stderr, `no agent "agent-9" in this stack (its agents: agent-1, agent-2)`) {
		t.Errorf("unknown agent: %+v", r)
	}
	if r := d.run(t, "usage", "--since", "yesterday"); r.code == 0 || !strings.Contains(r.stderr, "7d") {
		t.Errorf("bad --since: %+v", r)
	}
	if r := d.run(t, "usage", "--since", "1m", "--agent", "agent-1", "--json"); !strings.Contains(r.stdout, `"requests": 3`) {
		t.Errorf("since 1m, agent-1: %+v", r)
	}

	// A daemon restart: the account is rebuilt from the audit log, a
	// damaged line skipped and said; the chat's history is read back.
	if r := d.run(t, "chat", "send", "#general", "a word before the restart"); r.code != 0 {
		t.Fatalf("chat send: %+v", r)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(d.run(t, "chat", "tail").stdout, "a word before the restart"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the message never reached the tail")
		}
	}
	if r := d.run(t, "stop"); r.code != 0 {
		t.Fatalf("stop: %+v", r)
	}
	state := envValue(d.env, "THESYSTEM_STATE_DIR")
	f, err := os.OpenFile(filepath.Join(state, "audit.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(f, "{\"time\": \"2026-12-01T10:00:00Z\", \"agent\": trunc\n")
	_ = f.Close()
	if r := d.run(t, "start"); r.code != 0 {
		t.Fatalf("start again: %+v", r)
	}
	check("after a restart")
	if r := d.run(t, "chat", "tail", "--json"); !strings.Contains(r.stdout, `"content":"a word before the restart"`) && !strings.Contains(r.stdout, `"content": "a word before the restart"`) {
		t.Errorf("the chat's history after a restart: %+v", r)
	}
	b, _ := os.ReadFile(filepath.Join(state, "daemon.log"))
	if !strings.Contains(string(b), "audit.log:7: not an audit record, skipped") {
		t.Errorf("no warning of the damaged line in the daemon's log:\n%s", b)
	}
}
