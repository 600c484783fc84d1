package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// browser is headless Chromium (Debian's) driven over the DevTools
// protocol: a real browser loading the page, running its script, typing
// and clicking as a user does.
type browser struct {
	t  testing.TB
	ws *websocket.Conn
	mu sync.Mutex
	id int
}

// openBrowser starts Chromium at url, or skips when it is not installed
// (THESYSTEM_TEST_CHROMIUM=1 makes that a failure).
func openBrowser(t testing.TB, url string) *browser {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("THESYSTEM_TEST_CHROMIUM") == "1" {
			t.Fatal("THESYSTEM_TEST_CHROMIUM=1 but chromium is not installed")
		}
		t.Skip("chromium not installed")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
		"--window-size=1400,1100", "--remote-debugging-port=0", "--user-data-dir="+dir, url)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	var port string
	for deadline := time.Now().Add(30 * time.Second); port == ""; time.Sleep(100 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(dir, "DevToolsActivePort")); err == nil {
			port, _, _ = strings.Cut(string(b), "\n")
		}
		if time.Now().After(deadline) {
			t.Fatal("chromium did not open its DevTools port")
		}
	}
	var wsURL string
	for deadline := time.Now().Add(30 * time.Second); wsURL == ""; time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://127.0.0.1:"+port+"/json/list", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			var targets []struct{ Type, URL, WebSocketDebuggerURL string }
			_ = json.NewDecoder(resp.Body).Decode(&targets)
			_ = resp.Body.Close()
			for _, tg := range targets {
				if tg.Type == "page" && strings.HasPrefix(tg.URL, "http") {
					wsURL = tg.WebSocketDebuggerURL
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("chromium has no page")
		}
	}
	ws, resp, err := websocket.Dial(t.Context(), wsURL, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(64 << 20)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &browser{t: t, ws: ws}
}

// call sends a DevTools command and returns its result.
func (b *browser) call(method string, params any) json.RawMessage {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.id++
	msg, _ := json.Marshal(map[string]any{"id": b.id, "method": method, "params": params})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.ws.Write(ctx, websocket.MessageText, msg); err != nil {
		b.t.Fatalf("%s: %v", method, err)
	}
	for {
		_, data, err := b.ws.Read(ctx)
		if err != nil {
			b.t.Fatalf("%s: %v", method, err)
		}
		var r struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct{ Message string }
		}
		if json.Unmarshal(data, &r) != nil || r.ID != b.id {
			continue // an event
		}
		if r.Error != nil {
			b.t.Fatalf("%s: %s", method, r.Error.Message)
		}
		return r.Result
	}
}

// eval runs js in the page and returns its value as text.
func (b *browser) eval(js string) string {
	b.t.Helper()
	v, err := b.try(js)
	if err != nil {
		b.t.Fatal(err)
	}
	return v
}

// try runs js in the page: its value as text, or what it threw.
func (b *browser) try(js string) (string, error) {
	b.t.Helper()
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string
			Exception *struct{ Description string }
		} `json:"exceptionDetails"`
	}
	_ = json.Unmarshal(b.call("Runtime.evaluate", map[string]any{"expression": js, "returnByValue": true, "awaitPromise": true}), &r)
	if r.ExceptionDetails != nil {
		why := r.ExceptionDetails.Text
		if e := r.ExceptionDetails.Exception; e != nil {
			why = e.Description
		}
		return "", fmt.Errorf("%s: %s", js, why)
	}
	if s, ok := r.Result.Value.(string); ok {
		return s, nil
	}
	return fmt.Sprint(r.Result.Value), nil
}

// waitFor waits until js is true in the page.
func (b *browser) waitFor(what, js string, within time.Duration) {
	b.t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(200 * time.Millisecond) {
		v, err := b.try(js)
		if err == nil && v == "true" {
			return
		}
		if time.Now().After(deadline) {
			page, _ := b.try("document.location.href + '\\n' + document.body.innerText")
			b.t.Fatalf("%s: not in %s (%v); the page says:\n%s", what, within, err, page)
		}
	}
}

// screenshot writes the page as a PNG.
func (b *browser) screenshot(path string) {
	b.t.Helper()
	var r struct{ Data string }
	_ = json.Unmarshal(b.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}), &r)
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil || len(png) == 0 {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
