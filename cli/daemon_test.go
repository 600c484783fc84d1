package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
)

// daemonEnv is a project and an environment for a daemon of its own: its
// own state and runtime dirs, keyring service and proxy port.
type daemonEnv struct {
	dir  string
	env  []string
	port int
	sock string
}

func newDaemonEnv(t *testing.T) *daemonEnv {
	t.Helper()
	env := keyringEnv(t)
	d := &daemonEnv{dir: t.TempDir(), env: env, port: freePort(t)}
	d.sock = filepath.Join(envValue(env, "THESYSTEM_RUNTIME_DIR"), "api.sock")
	write(t, filepath.Join(d.dir, "thesystem.yaml"), fmt.Sprintf("proxy:\n  port: %d\n", d.port))
	t.Cleanup(func() {
		// Whatever a failed test left running goes.
		c := &api.Client{Socket: d.sock}
		if st, err := c.Status(context.Background()); err == nil {
			_ = c.Shutdown(context.Background())
			waitGone(t, st.PID)
		}
	})
	return d
}

func (d *daemonEnv) run(t *testing.T, args ...string) result {
	t.Helper()
	return runIn(t, d.dir, d.env, "", args...)
}

func (d *daemonEnv) client() *api.Client { return &api.Client{Socket: d.sock} }

func pidAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); pidAlive(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("pid %d still running", pid)
			return
		}
	}
}

func TestDaemonLifecycle(t *testing.T) {
	d := newDaemonEnv(t)
	r := d.run(t, "start")
	if r.code != 0 || !strings.Contains(r.stderr, "started the engine daemon") ||
		!strings.Contains(r.stderr, "agentauth-proxy    healthy") || !strings.Contains(r.stdout, "agentauth-proxy   healthy") {
		t.Fatalf("start: %+v", r)
	}
	// A second start finds the daemon and the stack running.
	if r := d.run(t, "start"); r.code != 0 || strings.Contains(r.stderr, "started the engine daemon") {
		t.Fatalf("second start: %+v", r)
	}

	r = d.run(t, "status", "--json")
	var st api.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 || !st.Running || st.PID == 0 {
		t.Fatalf("status --json: %v %+v", err, r)
	}
	if st.Components[0].Name != api.ComponentProxy || st.Components[0].State != api.StateHealthy || st.Components[0].Ports[0] != d.port {
		t.Errorf("status %+v", st.Components)
	}
	if fi, err := os.Stat(d.sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("API socket: %v %v", err, fi)
	}

	// Two followers of the event stream see the same changes.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	seen := make([][]string, 2)
	subscribed := make(chan struct{}, 2)
	for i := range 2 {
		wg.Go(func() {
			_ = d.client().Events(ctx, func(s api.Status) bool {
				seen[i] = append(seen[i], fmt.Sprintf("%d:%s", s.Seq, s.Components[0].State))
				if len(seen[i]) == 1 {
					subscribed <- struct{}{}
				}
				return s.Seq < st.Seq+1 || s.Components[0].State != api.StateHealthy
			})
		})
	}
	<-subscribed
	<-subscribed
	if r := d.run(t, "restart", "proxy"); r.code != 0 || !strings.Contains(r.stdout, "restarted agentauth-proxy") {
		t.Fatalf("restart: %+v", r)
	}
	wg.Wait()
	if strings.Join(seen[0], " ") != strings.Join(seen[1], " ") || !strings.Contains(strings.Join(seen[0], " "), ":stopping") {
		t.Errorf("followers saw\n %v\n %v", seen[0], seen[1])
	}

	r = d.run(t, "logs", "proxy", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"component":"agentauth-proxy"`) || !strings.Contains(r.stdout, "listening on http://127.0.0.1:") {
		t.Errorf("logs: %+v", r)
	}
	if r := d.run(t, "restart", "chat"); r.code != 2 || !strings.Contains(r.stderr, "agentchat-server is not part of this stack yet") {
		t.Errorf("restart chat: %+v", r)
	}
	r = d.run(t, "doctor", "--json")
	if !strings.Contains(r.stdout, `"engine_running": true`) || !strings.Contains(r.stdout, fmt.Sprintf("127.0.0.1:%d held by this engine", d.port)) {
		t.Errorf("doctor: %+v", r)
	}

	if r := d.run(t, "stop"); r.code != 0 || !strings.Contains(r.stdout, "stopped") {
		t.Fatalf("stop: %+v", r)
	}
	waitGone(t, st.PID)
	if _, err := os.Stat(d.sock); err == nil {
		t.Error("API socket left after the daemon exited")
	}
	if _, err := d.client().Status(t.Context()); !errors.Is(err, api.ErrNoDaemon) {
		t.Errorf("after stop: %v", err)
	}
	state := envValue(d.env, "THESYSTEM_STATE_DIR")
	if _, err := os.Stat(filepath.Join(state, "agentauth.token")); err == nil {
		t.Error("user token left after stop")
	}
}

// TestDaemonKill9: a daemon killed with SIGKILL leaves a stale socket; the
// next start replaces it, and the proxy's port is free again.
func TestDaemonKill9(t *testing.T) {
	d := newDaemonEnv(t)
	if r := d.run(t, "start"); r.code != 0 {
		t.Fatalf("start: %+v", r)
	}
	st, err := d.client().Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, st.PID)
	if _, err := os.Stat(d.sock); err != nil {
		t.Fatalf("expected a stale socket after kill -9: %v", err)
	}
	r := d.run(t, "start")
	if r.code != 0 || !strings.Contains(r.stdout, "agentauth-proxy   healthy") {
		t.Fatalf("start after kill -9: %+v", r)
	}
	st2, err := d.client().Status(t.Context())
	if err != nil || st2.PID == st.PID {
		t.Fatalf("new daemon: %+v %v", st2, err)
	}
	if r := d.run(t, "stop"); r.code != 0 {
		t.Fatalf("stop: %+v", r)
	}
	waitGone(t, st2.PID)
}

// TestStartFailsClearly: a port taken by another program fails the start
// with the component and the setting to change, and rolls back.
func TestStartFailsClearly(t *testing.T) {
	d := newDaemonEnv(t)
	ln, err := (&netListenConfig{}).listen(t, d.port)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := d.run(t, "start")
	if r.code != 1 || !strings.Contains(r.stderr, "agentauth-proxy") || !strings.Contains(r.stderr, "is in use") ||
		!strings.Contains(r.stderr, "proxy.port") {
		t.Fatalf("start on a taken port: %+v", r)
	}
	st, err := d.client().Status(t.Context())
	if err != nil || st.Components[0].State != api.StateFailed {
		t.Fatalf("after a failed start: %+v %v", st, err)
	}
}
