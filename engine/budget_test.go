package engine

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/config"
)

// TestBudgetSpentInStatus: when the proxy refuses an agent over its budget,
// the proxy's status detail says so (the menu bar notifies it from there).
func TestBudgetSpentInStatus(t *testing.T) {
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		if os.Getenv("THESYSTEM_TEST_KEYRING") == "1" {
			t.Fatal("no D-Bus session under .ci/with-keyring")
		}
		t.Skip("no D-Bus session: run under .ci/with-keyring")
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{}`)) }))
	defer up.Close()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	dir := t.TempDir()
	l, err := config.Parse("thesystem.yaml", []byte(fmt.Sprintf("proxy:\n  port: %d\n  upstreams:\n    anthropic: %s\n  budget:\n    requests: 1\n", port, up.URL)), dir,
		config.Options{LookupEnv: func(string) (string, bool) { return "", false }, Home: dir})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Config: l, Paths: config.Paths{StateDir: filepath.Join(dir, "s"), RuntimeDir: filepath.Join(dir, "r")},
		KeyService: fmt.Sprintf("thesystem-budget-test-%d", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.SetKey(t.Context(), "anthropic", "sk-ant-api03-PLANTEDbudgetKEY0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Stop(context.Background()) }()
	tok, err := e.proxy.Tokens().Issue("agent-1")
	if err != nil {
		t.Fatal(err)
	}
	call := func() int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/anthropic/v1/messages", port), strings.NewReader("{}"))
		req.Header.Set("X-Api-Key", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if c1, c2 := call(), call(); c1 != 200 || c2 != 429 {
		t.Fatalf("codes %d %d", c1, c2)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var detail string
		for _, c := range e.Status().Components {
			if c.Name == api.ComponentProxy {
				detail = c.Detail
			}
		}
		if strings.Contains(detail, "agent agent-1 has spent its budget: 1 of 1 requests") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy detail %q", detail)
		}
	}
}
