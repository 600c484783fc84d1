package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/thesystem-dev/thesystem/engine/chat"
)

// stack is a real chat server and a dashboard fed by it, both on
// 127.0.0.1.
func stack(t *testing.T) (chatURL, dashURL string, d *Dashboard) {
	t.Helper()
	var lc net.ListenConfig
	cl, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dl, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = chat.New(chat.Options{Channels: []string{"#general", "#agents"}}).Serve(ctx, cl) }()
	chatURL = "ws://" + cl.Addr().String()
	d = New(Options{ChatURL: chatURL})
	go func() { _ = d.Run(ctx) }()
	go func() { _ = d.Serve(ctx, dl) }()
	return chatURL, "http://" + dl.Addr().String(), d
}

// say connects as name, joins #general and sends content.
func say(t *testing.T, chatURL, name, content string) *websocket.Conn {
	t.Helper()
	ws, resp, err := websocket.Dial(t.Context(), chatURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Body != nil {
		_ = resp.Body.Close()
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	for _, m := range []map[string]string{{"type": "IDENTIFY", "name": name}, {"type": "JOIN", "channel": "#general"}, {"type": "MSG", "to": "#general", "content": content}} {
		b, _ := json.Marshal(m)
		_ = ws.Write(t.Context(), websocket.MessageText, b)
	}
	return ws
}

// get returns the headers and body of a GET.
func get(t *testing.T, url string) (http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Header, b
}

func waitState(t *testing.T, d *Dashboard, cond func(State) bool) State {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st := d.Snapshot(); cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("state never matched: %+v", d.Snapshot())
		}
	}
}

func TestDashboardFollowsChat(t *testing.T) {
	chatURL, dashURL, d := stack(t)
	waitState(t, d, func(s State) bool { return s.Connected && len(s.Channels) == 2 })
	say(t, chatURL, "alice", "hello team")
	st := waitState(t, d, func(s State) bool {
		for _, c := range s.Channels {
			if c.Name == "#general" && len(c.Messages) == 1 {
				return true
			}
		}
		return false
	})
	var general *Channel
	for _, c := range st.Channels {
		if c.Name == "#general" {
			general = c
		}
	}
	if m := general.Messages[0]; m.FromName != "alice" || m.Content != "hello team" {
		t.Errorf("message %+v", m)
	}
	names := []string{}
	for _, n := range general.Agents {
		names = append(names, n)
	}
	if strings.Join(names, ",") != "alice" {
		t.Errorf("agents %v (the dashboard itself is not listed)", names)
	}

	_, body := get(t, dashURL+"/api/health")
	if string(body) != `{"connected":true,"status":"ok"}`+"\n" {
		t.Errorf("health %s", body)
	}
	for _, path := range []string{"/", "/app.js", "/api/state"} {
		h, _ := get(t, dashURL+path)
		if h.Get("Content-Security-Policy") != CSP || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s headers %v", path, h)
		}
	}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", dashURL+"/api/state", strings.NewReader("{}"))
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %v %v", r, err)
	} else {
		_ = r.Body.Close()
	}
	if !strings.Contains(CSP, "script-src 'self'") || strings.Contains(CSP, "unsafe") {
		t.Errorf("CSP %q", CSP)
	}
}

func TestDashboardReconnects(t *testing.T) {
	_, _, d := stack(t)
	waitState(t, d, func(s State) bool { return s.Connected })
	d2 := New(Options{ChatURL: "ws://127.0.0.1:1"})
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_ = d2.Run(ctx)
	if d2.Snapshot().Connected {
		t.Error("connected to nothing")
	}
}

// TestDashboardInChromium renders the page in headless Chromium (Debian's)
// with a hostile message in the chat: it shows as text, nothing runs.
func TestDashboardInChromium(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("THESYSTEM_TEST_CHROMIUM") == "1" {
			t.Fatal("THESYSTEM_TEST_CHROMIUM=1 but chromium is not installed")
		}
		t.Skip("chromium not installed")
	}
	chatURL, dashURL, d := stack(t)
	waitState(t, d, func(s State) bool { return s.Connected })
	const hostile = `<img src=x onerror="document.body.dataset.pwned=1"><script>document.body.dataset.pwned=2</script>`
	say(t, chatURL, "mallory", hostile)
	waitState(t, d, func(s State) bool {
		for _, c := range s.Channels {
			if len(c.Messages) > 0 {
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--timeout=5000", "--dump-dom", dashURL+"/")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Logf("chromium stderr: %s", stderr.String())
		t.Fatalf("chromium: %v %s", err, out)
	}
	dom := string(out)
	if !strings.Contains(dom, `<span class="content">&lt;img src=x onerror="document.body.dataset.pwned=1"&gt;&lt;script&gt;`) {
		t.Errorf("the message is not shown as text:\n%s", dom)
	}
	if strings.Contains(dom, "data-pwned") || strings.Contains(dom, "<img") {
		t.Errorf("the message ran or injected markup:\n%s", dom)
	}
	if !strings.Contains(dom, `<span id="health" class="up">connected</span>`) || !strings.Contains(dom, "mallory") {
		t.Errorf("the page did not render the state:\n%s", dom)
	}
}
