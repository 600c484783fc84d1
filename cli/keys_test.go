package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	plantedKey   = "sk-ant-api03-PLANTEDcliKEY0123456789abcdefgh"
	plantedKey2  = "sk-ant-api03-PLANTEDnewKEY0123456789abcdefgh"
	plantedOther = "sk-proj-PLANTEDopenaiKEY0123456789abcdefgh"
)

// keyringEnv gives a test its own service name in the real Secret Service
// of the D-Bus session `make test` runs in. Without one the test skips,
// unless THESYSTEM_TEST_KEYRING=1 says the keyring must be there.
func keyringEnv(t testing.TB) []string {
	t.Helper()
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		if os.Getenv("THESYSTEM_TEST_KEYRING") == "1" {
			t.Fatal("THESYSTEM_TEST_KEYRING=1 but there is no D-Bus session")
		}
		t.Skip("no D-Bus session: run under .ci/with-keyring (make unit)")
	}
	state := t.TempDir()
	return []string{
		fmt.Sprintf("THESYSTEM_KEYRING_SERVICE=thesystem-test-%d", time.Now().UnixNano()),
		"THESYSTEM_STATE_DIR=" + state,
		"THESYSTEM_RUNTIME_DIR=" + filepath.Join(state, "run"),
	}
}

// testEnv is a clean environment with home as HOME, plus env (and the
// D-Bus session, for the key store).
func testEnv(home string, env []string) []string {
	return append([]string{"HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"DBUS_SESSION_BUS_ADDRESS=" + os.Getenv("DBUS_SESSION_BUS_ADDRESS")}, env...)
}

// newCmd is the binary run in dir (also its HOME) with testEnv.
func newCmd(ctx context.Context, dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = testEnv(dir, env)
	return cmd
}

// runIn is run with stdin.
func runIn(t testing.TB, dir string, env []string, stdin string, args ...string) result {
	t.Helper()
	cmd := newCmd(t.Context(), dir, env, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

func envValue(env []string, k string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, k+"="); ok {
			return v
		}
	}
	return ""
}

func noKeyIn(t *testing.T, what string, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(s, "PLANTED") {
			t.Errorf("a key leaked into %s: %q", what, s)
		}
	}
}

func TestKeysLifecycle(t *testing.T) {
	env := keyringEnv(t)
	dir := t.TempDir()

	r := runIn(t, dir, env, "", "keys", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "no keys stored") {
		t.Fatalf("empty list: %+v", r)
	}
	r = runIn(t, dir, env, plantedKey+"\n", "keys", "set", "anthropic")
	if r.code != 0 || !strings.Contains(r.stdout, "stored the anthropic key (sha256:") || !strings.Contains(r.stdout, "no proxy is running") {
		t.Fatalf("set: %+v", r)
	}
	noKeyIn(t, "keys set output", r.stdout, r.stderr)

	// Stored where the OS tools find it.
	out, err := exec.CommandContext(t.Context(), "secret-tool", "lookup", "service", envValue(env, "THESYSTEM_KEYRING_SERVICE"), "account", "anthropic").Output()
	if err != nil || string(out) != plantedKey {
		t.Fatalf("secret-tool lookup: %v (matches: %v)", err, string(out) == plantedKey)
	}

	for _, tc := range []struct {
		name, provider, stdin, want string
	}{
		{"another provider's key", "anthropic", plantedOther, "anthropic keys start with sk-ant-"},
		{"empty", "anthropic", "\n", "no key given"},
		{"a proxy token", "openai", "tsu_" + strings.Repeat("ab", 32), "that is a TheSystem proxy token"},
		{"unknown provider", "acme", plantedKey, `unknown provider "acme"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runIn(t, dir, env, tc.stdin, "keys", "set", tc.provider)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%+v", r)
			}
			noKeyIn(t, "an error", r.stdout, r.stderr)
		})
	}

	r = runIn(t, dir, env, "", "keys", "list", "--json")
	var entries []struct{ Provider, Fingerprint string }
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil || len(entries) != 1 || entries[0].Provider != "anthropic" ||
		!strings.HasPrefix(entries[0].Fingerprint, "sha256:") {
		t.Fatalf("list --json: %v %+v", err, r)
	}
	noKeyIn(t, "keys list", r.stdout)

	r = runIn(t, dir, env, "y\n", "keys", "get", "anthropic")
	if r.code != 1 || !strings.Contains(r.stderr, "refusing to print a key to a pipe") {
		t.Errorf("get to a pipe: %+v", r)
	}
	noKeyIn(t, "keys get to a pipe", r.stdout, r.stderr)

	t.Run("get on a terminal", func(t *testing.T) {
		// script(1) gives the command a pseudo-terminal.
		for _, tc := range []struct {
			answer string
			shows  bool
		}{{"n", false}, {"y", true}} {
			cmd := exec.CommandContext(t.Context(), "script", "-qec", binary+" keys get anthropic", "/dev/null")
			cmd.Env = testEnv(t.TempDir(), env)
			cmd.Stdin = strings.NewReader(tc.answer + "\n")
			b, _ := cmd.CombinedOutput()
			if strings.Contains(string(b), plantedKey) != tc.shows || !strings.Contains(string(b), "on this terminal? [y/N]") {
				t.Errorf("answer %q: shown=%v, output has the prompt=%v", tc.answer, strings.Contains(string(b), plantedKey),
					strings.Contains(string(b), "[y/N]"))
			}
		}
	})

	r = runIn(t, dir, env, "", "keys", "delete", "anthropic")
	if r.code != 0 || !strings.Contains(r.stdout, "deleted the anthropic key") {
		t.Fatalf("delete: %+v", r)
	}
	r = runIn(t, dir, env, "", "keys", "delete", "anthropic")
	if r.code != 1 || !strings.Contains(r.stderr, "no anthropic key is stored") {
		t.Fatalf("delete again: %+v", r)
	}
	r = runIn(t, dir, env, plantedKey2, "keys", "rotate", "anthropic")
	if r.code != 1 || !strings.Contains(r.stderr, "nothing to rotate") {
		t.Fatalf("rotate without a key: %+v", r)
	}
}

// upstreamRecorder is a fake Anthropic API on 127.0.0.1 that records the
// x-api-key it receives.
type upstreamRecorder struct {
	mu   sync.Mutex
	keys []string
}

func (u *upstreamRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.keys = append(u.keys, r.Header.Get("X-Api-Key"))
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"id":"m","type":"message","role":"assistant","content":[],"usage":{"input_tokens":3,"output_tokens":4}}`)
}

func (u *upstreamRecorder) last() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.keys) == 0 {
		return ""
	}
	return u.keys[len(u.keys)-1]
}

func freePort(t testing.TB) int {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestProxyProcess runs `thesystem proxy` for real: keys from the Secret
// Service, the user token file, a request through to a fake upstream with
// the real key, a rotation hot-swapped in by `keys rotate`, and a clean
// stop.
func TestProxyProcess(t *testing.T) {
	env := keyringEnv(t)
	state := envValue(env, "THESYSTEM_STATE_DIR")
	dir := t.TempDir()
	up := &upstreamRecorder{}
	fake := httptest.NewServer(up)
	defer fake.Close()
	port := freePort(t)
	write(t, filepath.Join(dir, "thesystem.yaml"), fmt.Sprintf("proxy:\n  port: %d\n  upstreams:\n    anthropic: %s\n", port, fake.URL))

	if r := runIn(t, dir, env, plantedKey, "keys", "set", "anthropic"); r.code != 0 {
		t.Fatalf("set: %+v", r)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	proxy := newCmd(ctx, dir, env, "proxy")
	var pout, perr bytes.Buffer
	proxy.Stdout, proxy.Stderr = &pout, &perr
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- proxy.Wait() }()

	tokenFile := filepath.Join(state, "agentauth.token")
	var token string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(tokenFile); err == nil && len(b) > 0 {
			token = strings.TrimSpace(string(b))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no token file; proxy output:\n%s\n%s", pout.String(), perr.String())
		}
	}
	if fi, _ := os.Stat(tokenFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v", fi.Mode().Perm())
	}

	call := func() int {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", fmt.Sprintf("http://127.0.0.1:%d/anthropic/v1/messages", port), strings.NewReader(`{"model":"claude-x"}`))
		req.Header.Set("X-Api-Key", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		noKeyIn(t, "a proxy response", string(b))
		return resp.StatusCode
	}
	if code := call(); code != 200 || up.last() != plantedKey {
		t.Fatalf("through the proxy: %d, upstream got the stored key: %v", code, up.last() == plantedKey)
	}

	r := runIn(t, dir, env, plantedKey2, "keys", "rotate", "anthropic")
	if r.code != 0 || !strings.Contains(r.stdout, "hot-swapped into the running proxy (keys for: anthropic)") {
		t.Fatalf("rotate: %+v", r)
	}
	for deadline := time.Now().Add(10 * time.Second); up.last() != plantedKey2; time.Sleep(50 * time.Millisecond) {
		if call() != 200 || time.Now().After(deadline) {
			t.Fatal("the rotated key never reached the upstream")
		}
	}

	_ = proxy.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("proxy did not stop on SIGTERM")
	}
	for _, f := range []string{tokenFile, filepath.Join(state, "run", "agentauth.ctl"), filepath.Join(state, "run", "agentauth.sock")} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s left behind after stop", f)
		}
	}
	audit, _ := os.ReadFile(filepath.Join(state, "audit.log"))
	if !strings.Contains(string(audit), `"model":"claude-x"`) {
		t.Errorf("audit log: %s", audit)
	}
	noKeyIn(t, "the proxy's output, logs and audit file", pout.String(), perr.String(), string(audit))
	if strings.Contains(string(audit)+pout.String()+perr.String(), token) {
		t.Error("the user token leaked into the proxy's output or audit file")
	}

	// A second proxy on a taken port says which setting to change.
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r = runIn(t, dir, env, "", "proxy")
	if r.code != 1 || !strings.Contains(r.stderr, "is in use") || !strings.Contains(r.stderr, "proxy.port") {
		t.Errorf("port in use: %+v", r)
	}
	_ = runIn(t, dir, env, "", "keys", "delete", "anthropic")
}

// TestKeysSetSignalsNoStranger: a pid file left by a proxy killed with
// kill -9 (older versions wrote one) names a process that is now
// someone else's; `keys set` must not signal it. It reaches a proxy only
// through the proxy's own control socket.
func TestKeysSetSignalsNoStranger(t *testing.T) {
	env := keyringEnv(t)
	dir := t.TempDir()
	stranger := exec.CommandContext(t.Context(), "sleep", "60") // SIGHUP would end it
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stranger.Process.Kill(); _ = stranger.Wait() }()
	run := filepath.Join(envValue(env, "THESYSTEM_STATE_DIR"), "run")
	if err := os.MkdirAll(run, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(run, "agentauth.pid"), strconv.Itoa(stranger.Process.Pid)+"\n")
	r := runIn(t, dir, env, plantedKey, "keys", "set", "anthropic")
	if r.code != 0 || !strings.Contains(r.stdout, "no proxy is running") {
		t.Fatalf("keys set: %+v", r)
	}
	time.Sleep(200 * time.Millisecond)
	if err := stranger.Process.Signal(syscall.Signal(0)); err != nil || stranger.ProcessState != nil {
		t.Fatalf("the stranger is gone: %v", err)
	}
}
