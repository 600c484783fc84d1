package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeBackend records calls; the engine itself is tested through the
// daemon in cli's tests.
type fakeBackend struct {
	mu     sync.Mutex
	status Status
	subs   []chan Status
	keys   map[string]string
}

func (f *fakeBackend) Status() Status { f.mu.Lock(); defer f.mu.Unlock(); return f.status }
func (f *fakeBackend) Subscribe() (Status, <-chan Status, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan Status, 16)
	f.subs = append(f.subs, ch)
	return f.status, ch, func() {}
}
func (f *fakeBackend) publish() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status.Seq++
	for _, ch := range f.subs {
		ch <- f.status
	}
}
func (f *fakeBackend) Start(context.Context) error { f.publish(); return nil }
func (f *fakeBackend) Stop(context.Context) error  { return ErrNotRunning }
func (f *fakeBackend) Restart(_ context.Context, c string) error {
	if c != ComponentProxy {
		return Errorf(ErrUnknownComponent, c+" is not part of this stack yet")
	}
	f.publish()
	return nil
}
func (f *fakeBackend) Logs(string, int) ([]LogLine, error) {
	return []LogLine{{Component: "x", Text: "hello"}}, nil
}
func (f *fakeBackend) FollowLogs(string, int) ([]LogLine, <-chan LogLine, func(), error) {
	ch := make(chan LogLine, 1)
	ch <- LogLine{Text: "new"}
	return []LogLine{{Text: "old"}}, ch, func() {}, nil
}
func (f *fakeBackend) Keys(context.Context) ([]KeyInfo, error) {
	return []KeyInfo{{"anthropic", "sha256:x"}}, nil
}
func (f *fakeBackend) SetKey(_ context.Context, p, k string) (KeyInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[p] = k
	return KeyInfo{Provider: p, Fingerprint: "sha256:y"}, nil
}
func (f *fakeBackend) DeleteKey(context.Context, string) error {
	return Errorf(ErrNotFound, "no openai key is stored")
}
func (f *fakeBackend) RotateTokens(context.Context) (int, error) { return 3, nil }
func (f *fakeBackend) Agents() []Agent                           { return []Agent{} }
func (f *fakeBackend) Chat(int) []ChatMessage                    { return []ChatMessage{} }
func (f *fakeBackend) FollowChat(int) ([]ChatMessage, <-chan ChatMessage, func()) {
	return nil, make(chan ChatMessage), func() {}
}
func (f *fakeBackend) ChatSend(context.Context, string, string) error { return nil }
func (f *fakeBackend) AgentDiff(context.Context, string, bool) (string, error) {
	return "", Errorf(ErrNotFound, "no agents")
}
func (f *fakeBackend) Usage(_ context.Context, since time.Time, agent string) (Usage, error) {
	return Usage{Since: since, Rows: []UsageRow{{Agent: agent}}}, nil
}
func (f *fakeBackend) AgentBundle(context.Context, string, io.Writer) (Bundle, error) {
	return Bundle{}, Errorf(ErrNotFound, "no agents")
}
func (f *fakeBackend) Dashboard() (Dashboard, error) {
	return Dashboard{URL: "http://127.0.0.1:3000/?key=k", Page: "/run/dashboard.html"}, nil
}
func (f *fakeBackend) Doctor(context.Context) []Check {
	return []Check{{ID: "config", Status: CheckOK}}
}
func (f *fakeBackend) Shutdown() {}

func serve(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := (&net.Dialer{}).DialContext(t.Context(), "unix", s.Socket); err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not come up")
		}
	}
}

func TestClientServer(t *testing.T) {
	b := &fakeBackend{status: Status{Version: "v", Components: []Component{{Name: ComponentProxy, State: StateHealthy}}}, keys: map[string]string{}}
	sock := filepath.Join(t.TempDir(), "run", "api.sock")
	serve(t, &Server{Backend: b, Socket: sock, UID: -1})
	c := &Client{Socket: sock}
	ctx := t.Context()

	st, err := c.Status(ctx)
	if err != nil || st.Version != "v" || st.Components[0].State != StateHealthy {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if err := c.Stop(ctx); !errors.Is(err, ErrNotRunning) {
		t.Errorf("typed error: %v", err)
	}
	err = c.Restart(ctx, "agentchat-server")
	if !errors.Is(err, ErrUnknownComponent) || err.Error() != "agentchat-server is not part of this stack yet" {
		t.Errorf("restart unknown: %v", err)
	}
	if err := c.DeleteKey(ctx, "openai"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete: %v", err)
	}
	if info, err := c.SetKey(ctx, "anthropic", "sk-ant-x"); err != nil || info.Fingerprint != "sha256:y" || b.keys["anthropic"] != "sk-ant-x" {
		t.Errorf("set key: %+v %v", info, err)
	}
	if n, err := c.RotateTokens(ctx); n != 3 || err != nil {
		t.Errorf("rotate: %d %v", n, err)
	}
	var followed []string
	_ = c.FollowLogs(ctx, "", 10, func(l LogLine) bool { followed = append(followed, l.Text); return len(followed) < 2 })
	if strings.Join(followed, ",") != "old,new" {
		t.Errorf("followed %v", followed)
	}

	// Two subscribers see the same changes.
	var wg sync.WaitGroup
	seqs := make([][]uint64, 2)
	ready := make(chan struct{}, 2)
	for i := range 2 {
		wg.Go(func() {
			_ = c.Events(ctx, func(s Status) bool {
				seqs[i] = append(seqs[i], s.Seq)
				if len(seqs[i]) == 1 {
					ready <- struct{}{}
				}
				return len(seqs[i]) < 3
			})
		})
	}
	<-ready
	<-ready
	_ = c.Start(ctx)
	_ = c.Restart(ctx, ComponentProxy)
	wg.Wait()
	if len(seqs[0]) != 3 || !slicesEqual(seqs[0], seqs[1]) {
		t.Errorf("subscribers saw %v and %v", seqs[0], seqs[1])
	}
}

func slicesEqual(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNoDaemon(t *testing.T) {
	c := &Client{Socket: filepath.Join(t.TempDir(), "nope.sock")}
	_, err := c.Status(t.Context())
	if !errors.Is(err, ErrNoDaemon) || !strings.Contains(err.Error(), "the engine is not running (no daemon at") {
		t.Fatalf("%v", err)
	}
}

func TestGuard(t *testing.T) {
	b := &fakeBackend{keys: map[string]string{}}
	sock := filepath.Join(t.TempDir(), "api.sock")
	serve(t, &Server{Backend: b, Socket: sock, UID: -1})
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	for _, tc := range []struct {
		name, host string
		hdr        map[string]string
		code       int
	}{
		{"ours", Host, nil, 200},
		{"origin", Host, map[string]string{"Origin": "http://evil.example"}, 403},
		{"referer", Host, map[string]string{"Referer": "http://evil.example/"}, 403},
		{"foreign host", "evil.example", nil, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+tc.host+"/v1/status", nil)
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.code)
			}
		})
	}
	fi, _ := os.Stat(sock)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v", fi.Mode().Perm())
	}
}

// TestRefusesOtherUID: a process of another user that can reach the
// socket (its mode opened up for the test) is refused by the peer
// credential check. The other-uid client is python3 run as nobody.
func TestRefusesOtherUID(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another uid")
	}
	py, err := exec.LookPath("/usr/bin/python3") // not a shim under /root, which nobody can read
	if err != nil {
		t.Skip("/usr/bin/python3 not installed")
	}
	dir, err := os.MkdirTemp("", "api-open")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "api.sock")
	serve(t, &Server{Backend: &fakeBackend{keys: map[string]string{}}, Socket: sock, SocketMode: 0o666, UID: -1})
	if err := os.Chmod(dir, 0o755); err != nil { // Serve made it 0700: opened again for the test
		t.Fatal(err)
	}
	script := `import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: thesystem\r\nConnection: close\r\n\r\n")
out=b""
while True:
    d=s.recv(4096)
    if not d: break
    out+=d
sys.stdout.write(out.decode())`
	run := func(uid uint32) string {
		cmd := exec.CommandContext(t.Context(), py, "-c", script, sock)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		_ = cmd.Run()
		return out.String()
	}
	if got := run(65534); !strings.Contains(got, "403 Forbidden") || !strings.Contains(got, "uid 65534 may not use this engine") {
		t.Errorf("other uid got:\n%s", got)
	}
	if got := run(0); !strings.Contains(got, "200 OK") {
		t.Errorf("own uid got:\n%s", got)
	}
}

func (f *fakeBackend) Reinstall(context.Context) error { return nil }

func (f *fakeBackend) Destroy(context.Context) error { return nil }

// stopBackend's Stop ends the daemon (its ctx) and takes a while to
// answer, as the engine's does with ExitOnStop.
type stopBackend struct {
	*fakeBackend
	cancel  func()
	mu      sync.Mutex
	stopped time.Time
}

func (s *stopBackend) Stop(context.Context) error {
	s.cancel()
	time.Sleep(200 * time.Millisecond)
	s.mu.Lock()
	s.stopped = time.Now()
	s.mu.Unlock()
	return nil
}

// TestServeWaitsForAnswersInFlight: Serve returns (and the daemon exits)
// only after the answer to the stop that ended it has been sent.
func TestServeWaitsForAnswersInFlight(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := &stopBackend{fakeBackend: &fakeBackend{keys: map[string]string{}}, cancel: cancel}
	sock := filepath.Join(t.TempDir(), "api.sock")
	returned := make(chan time.Time, 1)
	go func() { _ = (&Server{Backend: b, Socket: sock, UID: -1}).Serve(ctx); returned <- time.Now() }()
	c := &Client{Socket: sock}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := c.Status(t.Context()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not come up")
		}
	}
	if err := c.Stop(t.Context()); err != nil {
		t.Fatalf("the stop's answer: %v", err)
	}
	at := <-returned
	b.mu.Lock()
	defer b.mu.Unlock()
	if at.Before(b.stopped) {
		t.Errorf("Serve returned %s before the stop was answered", b.stopped.Sub(at))
	}
}

// TestRuntimeDirTightened: a runtime dir that exists with a looser mode
// (an older version's, or the user's umask) is made 0700 when the API
// serves in it.
func TestRuntimeDirTightened(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	serve(t, &Server{Backend: &fakeBackend{keys: map[string]string{}}, Socket: filepath.Join(dir, "api.sock"), UID: -1})
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("runtime dir mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
}
