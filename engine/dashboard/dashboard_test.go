package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/thesystem-dev/thesystem/engine/chat"
	"github.com/thesystem-dev/thesystem/engine/webguard"
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
	// Guarded as the stack guards them: each takes its own port, the chat
	// server the dashboard's page as its only browser origin.
	dashPort, chatPort := dl.Addr().(*net.TCPAddr).Port, cl.Addr().(*net.TCPAddr).Port
	chatGuard := webguard.Guard{Ports: []int{chatPort}, Origins: webguard.LocalOrigins(dashPort)}
	go func() {
		_ = chat.New(chat.Options{Channels: []string{"#general", "#agents"}, Guard: chatGuard}).Serve(ctx, cl)
	}()
	chatURL = "ws://" + cl.Addr().String()
	d = New(Options{ChatURL: chatURL, Guard: webguard.Guard{Ports: []int{dashPort}, Origins: webguard.LocalOrigins(dashPort)}})
	go func() { _ = d.Run(ctx) }()
	go func() { _ = d.Serve(ctx, dl) }()
	return chatURL, "http://" + dl.Addr().String(), d
}

// dialChat connects to the chat server, closed when the test ends.
func dialChat(t *testing.T, chatURL string) *websocket.Conn {
	t.Helper()
	ws, resp, err := websocket.Dial(t.Context(), chatURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Body != nil {
		_ = resp.Body.Close()
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return ws
}

// say connects as name, joins #general and sends content.
func say(t *testing.T, chatURL, name, content string) *websocket.Conn {
	t.Helper()
	ws := dialChat(t, chatURL)
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
// chromium is the browser, or a skip.
func chromium(t *testing.T) string {
	t.Helper()
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("THESYSTEM_TEST_CHROMIUM") == "1" {
			t.Fatal("THESYSTEM_TEST_CHROMIUM=1 but chromium is not installed")
		}
		t.Skip("chromium not installed")
	}
	return browser
}

// dumpDOM loads url in headless Chromium and returns the DOM after 5 s.
func dumpDOM(t *testing.T, browser, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--timeout=5000", "--dump-dom", url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Logf("chromium stderr: %s", stderr.String())
		t.Fatalf("chromium: %v %s", err, out)
	}
	return string(out)
}

func TestDashboardInChromium(t *testing.T) {
	browser := chromium(t)
	chatURL, dashURL, d := stack(t)
	waitState(t, d, func(s State) bool { return s.Connected && len(s.Channels) == 2 }) // joined: what is said next reaches it
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
	dom := dumpDOM(t, browser, dashURL+"/")
	if !strings.Contains(dom, `<span class="content">&lt;img src=x onerror="document.body.dataset.pwned=1"&gt;&lt;script&gt;`) {
		t.Errorf("the message is not shown as text:\n%s", dom)
	}
	if strings.Contains(dom, "data-pwned") || strings.Contains(dom, "<img") {
		t.Errorf("the message ran or injected markup:\n%s", dom)
	}
	if !strings.Contains(dom, `<span id="health" class="up">chat connected</span>`) || !strings.Contains(dom, "mallory") {
		t.Errorf("the page did not render the state:\n%s", dom)
	}
}

// statusRecorder keeps the status of every answer with an Origin.
type statusRecorder struct {
	mu   sync.Mutex
	seen []string // "origin status"
}

type recordingWriter struct {
	http.ResponseWriter
	status int
}

func (w *recordingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (r *statusRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rw := &recordingWriter{ResponseWriter: w}
		h.ServeHTTP(rw, req)
		if o := req.Header.Get("Origin"); o != "" {
			r.mu.Lock()
			r.seen = append(r.seen, fmt.Sprintf("%s %s %d", req.URL.Path, o, rw.status))
			r.mu.Unlock()
		}
	})
}

func serveOn(t *testing.T, h http.Handler) (*http.Server, int) {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return srv, ln.Addr().(*net.TCPAddr).Port
}

// TestWebPagesRefused: a page of another origin on this machine, in a real
// browser, cannot open the chat server's WebSocket nor read the
// dashboard's API; both servers refused it (403), not only the browser.
func TestWebPagesRefused(t *testing.T) {
	browser := chromium(t)
	rec := &statusRecorder{}
	// The ports first: each guard names the other's.
	chatSrv, chatPort := serveOn(t, nil)
	dashSrv, dashPort := serveOn(t, nil)
	cs := chat.New(chat.Options{Channels: []string{"#general"}, Guard: webguard.Guard{Ports: []int{chatPort}, Origins: webguard.LocalOrigins(dashPort)}})
	chatSrv.Handler = rec.wrap(cs)
	const key = "0123456789abcdef0123456789abcdef"
	d := New(Options{ChatURL: fmt.Sprintf("ws://127.0.0.1:%d", chatPort), Key: key, Guard: webguard.Guard{Ports: []int{dashPort}, Origins: webguard.LocalOrigins(dashPort)}})
	dashSrv.Handler = rec.wrap(d)
	go func() { _ = d.Run(t.Context()) }()
	waitState(t, d, func(s State) bool { return s.Connected })

	// The page reports what it got to its own server; /wait.js holds the
	// page's load (and so the DOM dump) until both reports are in.
	attack := fmt.Sprintf(`<!doctype html><body><script>
const out = (k, v) => { document.body.setAttribute("data-" + k, v); fetch("/report?" + k + "=" + encodeURIComponent(v)); };
try {
  const ws = new WebSocket("ws://127.0.0.1:%d/");
  ws.onopen = () => out("ws", "open");
  ws.onerror = () => out("ws", "refused");
} catch (e) { out("ws", "threw"); }
fetch("http://127.0.0.1:%d/api/state").then(r => r.text()).then(b => out("fetch", "read " + b.length)).catch(() => out("fetch", "failed"));
</script><script src="/wait.js"></script></body>`, chatPort, dashPort)
	reports := make(chan string, 4)
	_, attackPort := serveOn(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/report":
			reports <- r.URL.RawQuery
		case "/wait.js":
			for range 2 {
				select {
				case q := <-reports:
					t.Logf("the page reports %s", q)
				case <-time.After(15 * time.Second):
				}
			}
			w.Header().Set("Content-Type", "text/javascript")
		default:
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, attack)
		}
	}))
	dom := dumpDOM(t, browser, fmt.Sprintf("http://127.0.0.1:%d/", attackPort))
	if !strings.Contains(dom, `data-ws="refused"`) || !strings.Contains(dom, `data-fetch="failed"`) {
		t.Errorf("the page got through:\n%s", dom)
	}
	origin := fmt.Sprintf("http://127.0.0.1:%d", attackPort)
	rec.mu.Lock()
	seen := strings.Join(rec.seen, "\n")
	rec.mu.Unlock()
	for _, want := range []string{"/ " + origin + " 403", "/api/state " + origin + " 403"} {
		if !strings.Contains(seen, want) {
			t.Errorf("no %q among the answers to the page:\n%s", want, seen)
		}
	}
	if strings.Contains(seen, " 101") || strings.Contains(seen, " 200") {
		t.Errorf("a server answered the page:\n%s", seen)
	}
	// The dashboard's own page still works, opened with its key (which
	// becomes a cookie its API requests carry).
	if dom := dumpDOM(t, browser, fmt.Sprintf("http://127.0.0.1:%d/?key=%s", dashPort, key)); !strings.Contains(dom, `<span id="health" class="up">chat connected</span>`) {
		t.Errorf("the dashboard's own page:\n%s", dom)
	}
}

// TestRebindingHostRefused: a page that points a name of its own at
// 127.0.0.1 sends that name as Host; neither server answers it.
func TestRebindingHostRefused(t *testing.T) {
	chatURL, dashURL, _ := stack(t)
	for _, u := range []string{strings.Replace(chatURL, "ws://", "http://", 1) + "/health", dashURL + "/api/state", dashURL + "/"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
		req.Host = "rebind.example:" + req.URL.Port()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "rebinding") {
			t.Errorf("%s with Host %s: %d %s", u, req.Host, resp.StatusCode, b)
		}
	}
}

// TestDashboardShowsDirectMessages: with its identity an observer of the
// chat server, the dashboard shows what is said to an agent directly.
func TestDashboardShowsDirectMessages(t *testing.T) {
	key, err := chat.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "identity.pem")
	if err := chat.WriteKey(keyFile, key, 0o600, -1, -1); err != nil {
		t.Fatal(err)
	}
	var lc net.ListenConfig
	cl, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		_ = chat.New(chat.Options{Channels: []string{"#general"}, Observers: []string{"dashboard"}}).Serve(ctx, cl)
	}()
	chatURL := "ws://" + cl.Addr().String()
	d := New(Options{ChatURL: chatURL, Identity: keyFile})
	go func() { _ = d.Run(ctx) }()
	waitState(t, d, func(s State) bool { return s.Connected })
	join := func(name string) (*websocket.Conn, string) {
		ws := dialChat(t, chatURL)
		id, err := chat.Identify(t.Context(), ws, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ws, id
	}
	_, agentID := join("agent-1")
	sender, _ := join("mallory")
	b, _ := json.Marshal(map[string]string{"type": "MSG", "to": agentID, "content": "do it quietly"})
	if err := sender.Write(t.Context(), websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	waitState(t, d, func(s State) bool {
		for _, c := range s.Channels {
			for _, m := range c.Messages {
				if c.Name == DirectChannel && m.FromName == "mallory → agent-1" && m.Content == "do it quietly" {
					return true
				}
			}
		}
		return false
	})
}

// TestKeyRequired: every local account reaches the loopback port, so with
// a key nothing but /api/health answers without it; the key on the page's
// URL sets a cookie (HttpOnly, SameSite=Strict) and leaves the URL, and
// the cookie lets the page and its API in.
func TestKeyRequired(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	d := New(Options{ChatURL: "ws://127.0.0.1:1", Key: key})
	_, port := serveOn(t, d)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(c *http.Client, path string, cookie *http.Cookie) (int, http.Header) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	for _, tc := range []struct {
		name, path string
		cookie     *http.Cookie
		want       int
	}{
		{"the page without the key", "/", nil, http.StatusUnauthorized},
		{"the state without the key", "/api/state", nil, http.StatusUnauthorized},
		{"the events without the key", "/api/events", nil, http.StatusUnauthorized},
		{"a wrong key", "/?key=" + strings.Repeat("0", 32), nil, http.StatusUnauthorized},
		{"a wrong cookie", "/api/state", &http.Cookie{Name: KeyCookie, Value: "nope"}, http.StatusUnauthorized},
		{"the key on the URL", "/?key=" + key, nil, http.StatusSeeOther},
		{"the cookie", "/api/state", &http.Cookie{Name: KeyCookie, Value: key}, http.StatusOK},
		{"health needs no key (the engine's probe)", "/api/health", nil, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, header := get(noRedirect, tc.path, tc.cookie)
			if code != tc.want {
				t.Fatalf("%s: %d, want %d", tc.path, code, tc.want)
			}
			if tc.want != http.StatusSeeOther {
				return
			}
			if loc := header.Get("Location"); loc != "/" {
				t.Errorf("redirect to %q, want the page without the key", loc)
			}
			set := header.Get("Set-Cookie")
			if !strings.Contains(set, KeyCookie+"="+key) || !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Strict") {
				t.Errorf("Set-Cookie %q", set)
			}
		})
	}
}
