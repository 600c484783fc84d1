package dashboard

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/chat"
	"github.com/thesystem-dev/thesystem/engine/webguard"
)

// teamStub stands in for the engine behind the front (the real one: the
// CLI's dashboard test); it records what the compose box said.
type teamStub struct {
	mu   sync.Mutex
	said []string
}

func (s *teamStub) Team(context.Context) (Team, error) {
	return Team{Status: api.Status{Running: true, Agents: []api.Agent{{Name: "agent-1"}}}}, nil
}
func (s *teamStub) WatchTeam() (<-chan struct{}, func()) { return make(chan struct{}), func() {} }
func (s *teamStub) AgentLog(agent string, _ int) ([]api.LogLine, error) {
	if agent != "agent-1" {
		return nil, fmt.Errorf("no agent %q", agent)
	}
	return []api.LogLine{{Text: "working"}}, nil
}
func (s *teamStub) Say(_ context.Context, to, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.said = append(s.said, to+" "+text)
	return nil
}

// TestFront: the host's front answers the team's routes itself (with the
// key) and passes the rest to the container's socket; the compose box's
// POST is taken only as JSON from the dashboard's own origin; a page of
// another origin, a foreign Host, or no key get nothing.
func TestFront(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var lc net.ListenConfig
	cl, _ := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	go func() { _ = chat.New(chat.Options{Channels: []string{"#general"}}).Serve(ctx, cl) }()
	sock := filepath.Join(t.TempDir(), "dashboard.sock")
	sl, err := lc.Listen(ctx, "unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fl, _ := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	port := fl.Addr().(*net.TCPAddr).Port
	guard := webguard.Guard{Ports: []int{port}, Origins: webguard.LocalOrigins(port)}
	d := New(Options{ChatURL: "ws://" + cl.Addr().String(), Key: key, Guard: guard})
	go func() { _ = d.Run(ctx) }()
	go func() { _ = d.Serve(ctx, sl) }()
	stub := &teamStub{}
	go func() { _ = (&Front{Socket: sock, Key: key, Guard: guard, Team: stub}).Serve(ctx, fl) }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	own := fmt.Sprintf("http://127.0.0.1:%d", port)

	do := func(method, path, origin, ctype, body string, withKey bool) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if withKey {
			req.AddCookie(&http.Cookie{Name: KeyCookie, Value: key})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if code, body := do("GET", "/api/health", "", "", "", false); code == 200 && strings.Contains(body, `"connected":true`) {
			break // through the front to the container
		}
		if time.Now().After(deadline) {
			t.Fatal("the container's health never came through the front")
		}
	}
	for _, tc := range []struct {
		name, method, path, origin, ctype, body string
		key                                     bool
		code                                    int
		has                                     string
	}{
		{"page, through", "GET", "/", "", "", "", true, 200, `id="compose-text"`},
		{"chat state, through", "GET", "/api/state", "", "", "", true, 200, `"#general"`},
		{"team, here", "GET", "/api/team", "", "", "", true, 200, `"name":"agent-1"`},
		{"team without the key", "GET", "/api/team", "", "", "", false, 401, "needs its key"},
		{"team from another page", "GET", "/api/team", "http://127.0.0.1:1", "", "", true, 403, "origin"},
		{"log", "GET", "/api/team/log?agent=agent-1", "", "", "", true, 200, "working"},
		{"log of no agent", "GET", "/api/team/log?agent=nope", "", "", "", true, 404, "no agent"},
		{"send", "POST", "/api/send", own, "application/json", `{"to":"#general","text":"@agent-1 hi"}`, true, 200, "#general"},
		{"send without Origin", "POST", "/api/send", "", "application/json", `{"to":"#general","text":"x"}`, true, 403, "own page"},
		{"send from another page", "POST", "/api/send", "http://evil.example", "application/json", `{"to":"#general","text":"x"}`, true, 403, "origin"},
		{"send as a form", "POST", "/api/send", own, "application/x-www-form-urlencoded", `to=x`, true, 403, "JSON"},
		{"send without the key", "POST", "/api/send", own, "application/json", `{"to":"#general","text":"x"}`, false, 401, ""},
		{"send nothing", "POST", "/api/send", own, "application/json", `{"to":"#general","text":"  "}`, true, 400, "nothing"},
		{"send by GET", "GET", "/api/send", "", "", "", true, 405, ""},
		{"team is read-only", "POST", "/api/team", own, "application/json", "{}", true, 405, "read-only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(tc.method, tc.path, tc.origin, tc.ctype, tc.body, tc.key)
			if code != tc.code || !strings.Contains(body, tc.has) {
				t.Errorf("%d %q, want %d with %q", code, body, tc.code, tc.has)
			}
		})
	}
	stub.mu.Lock()
	defer stub.mu.Unlock()
	if strings.Join(stub.said, "|") != "#general @agent-1 hi" {
		t.Errorf("said %q", stub.said)
	}
	// A rebinding page's Host, at the front's own routes and through it.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/api/team", nil)
	req.Host = "evil.example:" + fmt.Sprint(port)
	req.AddCookie(&http.Cookie{Name: KeyCookie, Value: key})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("a rebinding Host: %d", resp.StatusCode)
	}
	_ = os.Remove(sock)
}
