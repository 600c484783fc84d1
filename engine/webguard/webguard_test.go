package webguard

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestGuard(t *testing.T) {
	g := Guard{Ports: []int{6667, 16667}, Origins: LocalOrigins(3000)}
	for _, tc := range []struct {
		name, host, origin, refused string
	}{
		{"the host's probe", "127.0.0.1:16667", "", ""},
		{"an agent through its relay", "127.0.0.1:6667", "", ""},
		{"localhost", "localhost:16667", "", ""},
		{"ipv6 loopback", "[::1]:16667", "", ""},
		{"a unix socket client", "localhost", "", ""},
		{"the dashboard's page", "127.0.0.1:16667", "http://127.0.0.1:3000", ""},
		{"the dashboard's page by name", "localhost:16667", "http://LOCALHOST:3000", ""},
		{"another page", "127.0.0.1:16667", "http://evil.example", `origin "http://evil.example"`},
		{"another local page", "127.0.0.1:16667", "http://127.0.0.1:8080", "origin"},
		{"a sandboxed frame", "127.0.0.1:16667", "null", "origin"},
		{"a rebinding page", "evil.example:16667", "", `host "evil.example:16667"`},
		{"a rebinding page, no port", "evil.example", "", "host"},
		{"another address of this machine", "10.0.0.5:16667", "", "loopback"},
		{"another port", "127.0.0.1:9", "", "not a port this server is reached at"},
		{"no host", "", "", "without a Host"},
		{"a hostile header", "127.0.0.1:16667", "http://x\x1b[31m", "(value not shown)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/health", nil)
			r.Host = tc.host
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			err := g.Check(r)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && (err == nil || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("err = %v, want it refused for %q", err, tc.refused)
			}
		})
	}
}

func TestZeroGuard(t *testing.T) {
	var g Guard
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	for host, want := range map[string]int{"127.0.0.1:1234": 200, "evil.example:1234": 403} {
		r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("%s: %d, want %d", host, w.Code, want)
		}
	}
	r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
	r.Host = "127.0.0.1:1"
	r.Header.Set("Origin", "http://127.0.0.1:1")
	if g.Check(r) == nil {
		t.Error("the zero guard took a web page")
	}
}
