package supervise

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var helper string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "supervise-helper")
	if err != nil {
		panic(err)
	}
	helper = filepath.Join(dir, "helper")
	if out, err := exec.CommandContext(context.Background(), "go", "build", "-o", helper, "./testdata/helper").CombinedOutput(); err != nil {
		panic(fmt.Sprintf("build helper: %v\n%s", err, out))
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a helper component listening on a fresh port, ready when it
// accepts.
func proc(t *testing.T, logs *Logs, name string, deps []string, args ...string) (Spec, *ProcService) {
	t.Helper()
	addr := freeAddr(t)
	ps := &ProcService{Name: name, Argv: append([]string{helper, "-listen", addr}, args...), Logs: logs, StopTimeout: 500 * time.Millisecond}
	return Spec{
		Name: name, DependsOn: deps, Service: ps,
		Ready: TCPProbe{Addr: addr}, ReadyTimeout: 10 * time.Second,
		Backoff: Backoff{Initial: 100 * time.Millisecond, Max: time.Second, StableAfter: time.Hour, MaxCrashes: 3},
	}, ps
}

// recorder keeps every snapshot a subscriber sees.
type recorder struct {
	mu    sync.Mutex
	snaps []Snapshot
	stop  func()
	done  chan struct{}
}

func record(s *Supervisor) *recorder {
	first, ch, stop := s.Subscribe()
	r := &recorder{snaps: []Snapshot{first}, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for snap := range ch {
			r.mu.Lock()
			r.snaps = append(r.snaps, snap)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) close() []Snapshot {
	r.stop()
	<-r.done
	return r.snaps
}

func state(s Snapshot, name string) ComponentStatus {
	for _, c := range s.Components {
		if c.Name == name {
			return c
		}
	}
	return ComponentStatus{}
}

// waitFor polls the supervisor until cond holds.
func waitFor(t *testing.T, s *Supervisor, what string, cond func(Snapshot) bool) Snapshot {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		snap := s.Status()
		if cond(snap) {
			return snap
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; status %+v", what, snap)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie (state Z) is dead, just not yet reaped.
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

func TestDependencyOrderAndReadiness(t *testing.T) {
	logs := NewLogs(100)
	a, _ := proc(t, logs, "chat", nil, "-ready-after", "300ms")
	b, _ := proc(t, logs, "dashboard", []string{"chat"})
	c, _ := proc(t, logs, "swarm", []string{"dashboard"})
	s, err := New([]Spec{c, b, a}, logs) // given out of order
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Names(), ","); got != "chat,dashboard,swarm" {
		t.Fatalf("order %s", got)
	}
	rec := record(s)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	snaps := rec.close()

	// Nothing starts before what it depends on is healthy; nothing stops
	// before what depends on it has stopped.
	for _, snap := range snaps {
		for _, pair := range [][2]string{{"chat", "dashboard"}, {"dashboard", "swarm"}} {
			dep, user := state(snap, pair[0]), state(snap, pair[1])
			if user.State == StateStarting || user.State == StateHealthy {
				if dep.State != StateHealthy {
					t.Fatalf("seq %d: %s is %s while %s is %s", snap.Seq, pair[1], user.State, pair[0], dep.State)
				}
			}
		}
	}
	for i := 1; i < len(snaps); i++ {
		if snaps[i].Seq != snaps[i-1].Seq+1 {
			t.Fatalf("subscriber missed a change: seq %d after %d", snaps[i].Seq, snaps[i-1].Seq)
		}
	}
	last := snaps[len(snaps)-1]
	for _, n := range []string{"chat", "dashboard", "swarm"} {
		if st := state(last, n); st.State != StateStopped || st.PID != 0 {
			t.Errorf("%s after stop: %+v", n, st)
		}
	}
}

func TestKill9Restarts(t *testing.T) {
	logs := NewLogs(100)
	a, ps := proc(t, logs, "chat", nil)
	a.Backoff.Initial = 200 * time.Millisecond
	s, _ := New([]Spec{a}, logs)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	old := ps.PID()
	rec := record(s)
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	snap := waitFor(t, s, "a restart", func(sn Snapshot) bool {
		st := state(sn, "chat")
		return st.State == StateHealthy && st.PID != 0 && st.PID != old
	})
	snaps := rec.close()
	st := state(snap, "chat")
	if st.Restarts != 1 || st.Crashes != 1 || !strings.Contains(st.LastError, "signal: killed") {
		t.Errorf("after kill -9: %+v", st)
	}
	var saw bool
	for _, sn := range snaps {
		if c := state(sn, "chat"); c.State == StateRestarting {
			saw = true
			// Jitter 0: the first restart waits exactly the initial backoff.
			if c.Detail != "restart 1 in 200ms" {
				t.Errorf("backoff detail %q", c.Detail)
			}
		}
	}
	if !saw {
		t.Error("never went through restarting")
	}
	if alive(old) {
		t.Error("the killed process is still there")
	}
}

func TestBackoffDelays(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second}.withDefaults()
	var got []string
	for i := 1; i <= 6; i++ {
		got = append(got, b.Delay(i).String())
	}
	if strings.Join(got, " ") != "100ms 200ms 400ms 800ms 1s 1s" {
		t.Errorf("delays %v", got)
	}
	b.Jitter = 0.2
	for range 100 {
		if d := b.Delay(1); d < 80*time.Millisecond || d > 120*time.Millisecond {
			t.Fatalf("jittered delay %s outside ±20%%", d)
		}
	}
}

func TestCrashLoopFails(t *testing.T) {
	logs := NewLogs(100)
	a, _ := proc(t, logs, "chat", nil, "-exit-after", "150ms", "-code", "7", "-print", "2")
	a.Backoff = Backoff{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond, StableAfter: time.Hour, MaxCrashes: 3}
	s, _ := New([]Spec{a}, logs)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	snap := waitFor(t, s, "failed", func(sn Snapshot) bool { return state(sn, "chat").State == StateFailed })
	st := state(snap, "chat")
	if st.Restarts != 3 || !strings.Contains(st.LastError, "exit status 7") || st.Detail != "crashed 4 times in a row" {
		t.Errorf("failed status %+v", st)
	}
	if !strings.Contains(strings.Join(st.LastLines, "\n"), "crashing with status 7") {
		t.Errorf("last lines %q", st.LastLines)
	}
	// It stays failed: no hot spin, no silent stop.
	time.Sleep(300 * time.Millisecond)
	if st2 := state(s.Status(), "chat"); st2.State != StateFailed || st2.Restarts != 3 {
		t.Errorf("after failing: %+v", st2)
	}
	// Restart brings it back from failed.
	if err := s.Restart(t.Context(), "chat"); err != nil {
		t.Fatal(err)
	}
	if st3 := state(s.Status(), "chat"); st3.State != StateHealthy || st3.Crashes != 0 {
		t.Errorf("after restart: %+v", st3)
	}
}

func TestStableUptimeResetsCrashes(t *testing.T) {
	logs := NewLogs(100)
	a, _ := proc(t, logs, "chat", nil, "-exit-after", "150ms")
	a.Backoff = Backoff{Initial: 10 * time.Millisecond, StableAfter: 100 * time.Millisecond, MaxCrashes: 2}
	s, _ := New([]Spec{a}, logs)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	// Each run lasts longer than StableAfter, so the consecutive count
	// stays at 1 while the lifetime count grows past MaxCrashes.
	snap := waitFor(t, s, "4 restarts", func(sn Snapshot) bool { return state(sn, "chat").Restarts >= 4 })
	if st := state(snap, "chat"); st.State == StateFailed || st.Crashes != 1 {
		t.Errorf("%+v", st)
	}
}

func TestRestartOneAndDependents(t *testing.T) {
	logs := NewLogs(100)
	a, pa := proc(t, logs, "chat", nil)
	b, pb := proc(t, logs, "dashboard", []string{"chat"})
	c, pc := proc(t, logs, "proxy", nil)
	s, _ := New([]Spec{c, a, b}, logs)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	before := [3]int{pa.PID(), pb.PID(), pc.PID()}
	if err := s.Restart(t.Context(), "chat"); err != nil {
		t.Fatal(err)
	}
	after := [3]int{pa.PID(), pb.PID(), pc.PID()}
	if after[0] == before[0] || after[1] == before[1] || after[2] != before[2] {
		t.Errorf("pids before %v after %v: chat and dashboard restart, proxy stays", before, after)
	}
	for _, n := range []string{"chat", "dashboard", "proxy"} {
		if st := state(s.Status(), n); st.State != StateHealthy {
			t.Errorf("%s: %+v", n, st)
		}
	}
	if err := s.Restart(t.Context(), "db"); !errors.Is(err, ErrUnknownComponent) {
		t.Errorf("unknown: %v", err)
	}
}

// TestStopLeavesNothing: a component that ignores SIGTERM and has a child
// that ignores it too is gone, group and all, after Stop.
func TestStopLeavesNothing(t *testing.T) {
	logs := NewLogs(100)
	pids := filepath.Join(t.TempDir(), "pids")
	a, _ := proc(t, logs, "stubborn", nil, "-ignore-term", "-child", "-pidfile", pids)
	s, _ := New([]Spec{a}, logs)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	var all []int
	for deadline := time.Now().Add(5 * time.Second); len(all) < 2; time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(pids)
		all = all[:0]
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(f)
			all = append(all, n)
		}
		if time.Now().After(deadline) {
			t.Fatalf("pids: %v", all)
		}
	}
	for _, p := range all {
		if !alive(p) {
			t.Fatalf("pid %d not running before stop", p)
		}
	}
	s.Stop()
	for _, p := range all {
		for deadline := time.Now().Add(3 * time.Second); alive(p); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("pid %d survived stop", p)
				break
			}
		}
	}
}

func TestStartFailureRollsBack(t *testing.T) {
	logs := NewLogs(100)
	a, pa := proc(t, logs, "chat", nil)
	b, _ := proc(t, logs, "dashboard", []string{"chat"}, "-exit-after", "10ms", "-code", "4")
	b.Ready = TCPProbe{Addr: "127.0.0.1:1"} // never ready
	s, _ := New([]Spec{a, b}, logs)
	err := s.Start(t.Context())
	var se *StartError
	if !errors.As(err, &se) || se.Component != "dashboard" || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("Start = %v", err)
	}
	snap := s.Status()
	if st := state(snap, "chat"); st.State != StateStopped || pa.PID() != 0 {
		t.Errorf("chat not rolled back: %+v", st)
	}
	if st := state(snap, "dashboard"); st.State != StateFailed || !strings.Contains(st.LastError, "exit status 4") {
		t.Errorf("dashboard: %+v", st)
	}
}

func TestReadyTimeout(t *testing.T) {
	logs := NewLogs(100)
	a, _ := proc(t, logs, "chat", nil, "-ready-after", "1h")
	a.ReadyTimeout = 300 * time.Millisecond
	s, _ := New([]Spec{a}, logs)
	err := s.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), "chat: not ready after 300ms: dial") {
		t.Fatalf("Start = %v", err)
	}
}

func TestLivenessRestarts(t *testing.T) {
	logs := NewLogs(100)
	a, ps := proc(t, logs, "chat", nil)
	sick := filepath.Join(t.TempDir(), "sick")
	a.Live = ProbeFunc(func(context.Context) error {
		if _, err := os.Stat(sick); err == nil {
			return errors.New("sick")
		}
		return nil
	})
	a.LiveInterval, a.LiveFailures = 30*time.Millisecond, 2
	s, _ := New([]Spec{a}, logs)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	old := ps.PID()
	if err := os.WriteFile(sick, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, "degraded", func(sn Snapshot) bool { return state(sn, "chat").State == StateDegraded })
	snap := waitFor(t, s, "restarting", func(sn Snapshot) bool { return state(sn, "chat").Restarts == 1 })
	if st := state(snap, "chat"); !strings.Contains(st.LastError, "liveness probe failed 2 times: sick") {
		t.Errorf("%+v", st)
	}
	_ = os.Remove(sick)
	waitFor(t, s, "healthy again", func(sn Snapshot) bool {
		st := state(sn, "chat")
		return st.State == StateHealthy && st.PID != old && st.PID != 0
	})
	if alive(old) {
		t.Error("the unhealthy process was not stopped")
	}
}

func TestPermanentFailure(t *testing.T) {
	s, _ := New([]Spec{{Name: "x", Service: &ProcService{Name: "x", Argv: []string{"/nonexistent/binary"}}}}, nil)
	err := s.Start(t.Context())
	if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "x: exited before it was ready: start /nonexistent/binary") {
		t.Fatalf("Start = %v", err)
	}
	// A permanent error after a good start: failed, no restart.
	calls := 0
	var mu sync.Mutex
	svc := ServiceFunc(func(ctx context.Context) error {
		mu.Lock()
		calls++
		mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(300 * time.Millisecond):
			return Permanent(errors.New("config is wrong"))
		}
	})
	s2, _ := New([]Spec{{Name: "y", Service: svc}}, nil)
	if err := s2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s2.Stop()
	snap := waitFor(t, s2, "failed", func(sn Snapshot) bool { return state(sn, "y").State == StateFailed })
	if st := state(snap, "y"); st.Restarts != 0 || st.Detail != "will not be restarted" {
		t.Errorf("%+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("served %d times", calls)
	}
}

func TestSpecErrors(t *testing.T) {
	svc := ServiceFunc(func(ctx context.Context) error { <-ctx.Done(); return nil })
	for _, tc := range []struct {
		name  string
		specs []Spec
		want  string
	}{
		{"cycle", []Spec{{Name: "a", DependsOn: []string{"b"}, Service: svc}, {Name: "b", DependsOn: []string{"a"}, Service: svc}}, "dependency cycle a → b → a"},
		{"unknown dep", []Spec{{Name: "a", DependsOn: []string{"zz"}, Service: svc}}, `a depends on unknown component "zz"`},
		{"duplicate", []Spec{{Name: "a", Service: svc}, {Name: "a", Service: svc}}, `two components named "a"`},
		{"no service", []Spec{{Name: "a"}}, "needs a name and a service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.specs, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v", err)
			}
		})
	}
}

func TestLogs(t *testing.T) {
	logs := NewLogs(5)
	a, _ := proc(t, logs, "chat", nil, "-print", "3")
	s, _ := New([]Spec{a}, logs)
	backlog, follow, stop := logs.Follow("chat", 100)
	defer stop()
	if len(backlog) != 0 {
		t.Fatalf("backlog before start: %v", backlog)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	var got []Line
	for len(got) < 6 {
		select {
		case l := <-follow:
			got = append(got, l)
		case <-time.After(5 * time.Second):
			t.Fatalf("followed %d lines: %+v", len(got), got)
		}
	}
	streams := map[string]int{}
	for _, l := range got {
		if l.Component != "chat" || l.Time.IsZero() {
			t.Errorf("line %+v", l)
		}
		streams[l.Stream]++
	}
	if streams["stdout"] != 3 || streams["stderr"] != 3 {
		t.Errorf("streams %v", streams)
	}
	// The ring keeps the last 5.
	if tail := logs.Tail("chat", 100); len(tail) != 5 {
		t.Errorf("tail %d lines", len(tail))
	}
	w := logs.Writer("x", "stdout")
	_, _ = w.Write([]byte("a\r\nb"))
	_, _ = w.Write([]byte("c\n"))
	_, _ = w.Write([]byte("partial"))
	_ = w.Close()
	var texts []string
	for _, l := range logs.Tail("x", -1) {
		texts = append(texts, l.Text)
	}
	if strings.Join(texts, "|") != "a|bc|partial" {
		t.Errorf("line splitting: %q", texts)
	}
}

// TestSiblingsStartTogether: components whose dependencies are up start at
// once. Each sibling here is ready only once the other one runs, which a
// one-by-one start could never satisfy.
func TestSiblingsStartTogether(t *testing.T) {
	var mu sync.Mutex
	running := map[string]bool{}
	svc := func(name string) Service {
		return ServiceFunc(func(ctx context.Context) error {
			mu.Lock()
			running[name] = true
			mu.Unlock()
			<-ctx.Done()
			return nil
		})
	}
	readyWhen := func(other string) Probe {
		return ProbeFunc(func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			if !running[other] {
				return errors.New(other + " not running yet")
			}
			return nil
		})
	}
	base := Spec{Name: "swarm", Service: svc("swarm")}
	a := Spec{Name: "agent-1", DependsOn: []string{"swarm"}, Service: svc("agent-1"), Ready: readyWhen("agent-2"), ReadyTimeout: 5 * time.Second}
	b := Spec{Name: "agent-2", DependsOn: []string{"swarm"}, Service: svc("agent-2"), Ready: readyWhen("agent-1"), ReadyTimeout: 5 * time.Second}
	s, err := New([]Spec{base, a, b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("siblings did not start together: %v", err)
	}
	s.Stop()
}

func TestReport(t *testing.T) {
	svc := ServiceFunc(func(ctx context.Context) error {
		Report(ctx, "building %s", "images")
		<-ctx.Done()
		return nil
	})
	gate := make(chan struct{})
	s, _ := New([]Spec{{Name: "x", Service: svc, Ready: ProbeFunc(func(context.Context) error {
		select {
		case <-gate:
			return nil
		default:
			return errors.New("not yet")
		}
	})}}, nil)
	rec := record(s)
	done := make(chan error)
	go func() { done <- s.Start(t.Context()) }()
	waitFor(t, s, "the report", func(sn Snapshot) bool { return state(sn, "x").Detail == "building images" })
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s.Stop()
	rec.close()
	if st := state(s.Status(), "x"); st.Detail != "" {
		t.Errorf("detail after start %q", st.Detail)
	}
	if lines := s.Logs().Tail("x", -1); len(lines) == 0 || lines[0].Text != "building images" {
		t.Errorf("not logged: %+v", lines)
	}
	Report(context.Background(), "outside a service: ignored")
}

// A single missed liveness probe (a loaded machine) is logged, not shown:
// the component turns degraded only when the next probe fails too, and
// healthy again when one passes, without a restart.
func TestLivenessSingleMissIsNotDegraded(t *testing.T) {
	logs := NewLogs(100)
	a, ps := proc(t, logs, "chat", nil)
	var mu sync.Mutex
	fail := 0 // how many of the next probes fail
	a.Live = ProbeFunc(func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if fail > 0 {
			fail--
			return errors.New("slow forward")
		}
		return nil
	})
	a.LiveInterval = 30 * time.Millisecond // LiveFailures 3, so DegradedAfter 2
	s, _ := New([]Spec{a}, logs)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	count := func(text string) int {
		n := 0
		for _, l := range logs.Tail("chat", 100) {
			if strings.Contains(l.Text, text) {
				n++
			}
		}
		return n
	}
	misses := func() int { return count("liveness failed 1/3: slow forward") }
	passes := func() int { return count("liveness probe passed again") }
	waitLog := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: %v", what, logs.Tail("chat", 20))
			}
		}
	}

	rec := record(s)
	mu.Lock()
	fail = 1
	mu.Unlock()
	waitLog("the miss, then a pass", func() bool { return misses() == 1 && passes() == 1 })
	for _, sn := range rec.close() {
		if st := state(sn, "chat"); st.State != StateHealthy {
			t.Fatalf("one miss showed as %s (%s)", st.State, st.Detail)
		}
	}

	mu.Lock()
	fail = 2
	mu.Unlock()
	waitFor(t, s, "degraded after two misses", func(sn Snapshot) bool {
		st := state(sn, "chat")
		return st.State == StateDegraded && strings.Contains(st.Detail, "liveness failed 2/3: slow forward")
	})
	snap := waitFor(t, s, "healthy again", func(sn Snapshot) bool { return state(sn, "chat").State == StateHealthy })
	if st := state(snap, "chat"); st.Restarts != 0 || st.PID != ps.PID() {
		t.Errorf("restarted over two misses: %+v", st)
	}
}

func TestReadyPollDelay(t *testing.T) {
	for _, tc := range []struct {
		took, waited, want time.Duration
	}{
		{time.Millisecond, 0, 50 * time.Millisecond},
		{time.Millisecond, 500 * time.Millisecond, 50 * time.Millisecond},
		{700 * time.Millisecond, time.Second, 700 * time.Millisecond}, // a slow probe: no back-to-back checks
		{time.Millisecond, 10 * time.Second, 500 * time.Millisecond},  // a long wait: fewer checks
		{5 * time.Second, 5 * time.Minute, time.Second},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.took, tc.waited), func(t *testing.T) {
			if got := readyPollDelay(tc.took, tc.waited); got != tc.want {
				t.Errorf("readyPollDelay(%s, %s) = %s, want %s", tc.took, tc.waited, got, tc.want)
			}
		})
	}
}

// TestLineWriterBounded: whatever is written, in whatever pieces, the
// writer keeps at most MaxLineBytes of a line, in memory and in the logs.
func TestLineWriterBounded(t *testing.T) {
	big := strings.Repeat("x", 8<<20)
	for _, tc := range []struct {
		name   string
		writes []string
		want   []string
	}{
		{"lines", []string{"a\nb\r\n", "c"}, []string{"a", "b", "c"}},
		{"split across writes", []string{"hel", "lo\nwor", "ld\n"}, []string{"hello", "world"}},
		{"8 MiB line in one write", []string{big + "\nafter\n"}, []string{strings.Repeat("x", MaxLineBytes) + cutMark, "after"}},
		{"8 MiB line in pieces", []string{big[:3<<20], big[3<<20:], "\nafter"}, []string{strings.Repeat("x", MaxLineBytes) + cutMark, "after"}},
		{"exactly the limit", []string{strings.Repeat("y", MaxLineBytes) + "\n"}, []string{strings.Repeat("y", MaxLineBytes)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := NewLogs(100)
			w := logs.Writer("c", "stdout")
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
				if cap(w.buf) > 2*MaxLineBytes+len(cutMark) {
					t.Fatalf("the writer holds %d bytes", cap(w.buf))
				}
			}
			_ = w.Close()
			var got []string
			for _, l := range logs.Tail("c", 100) {
				got = append(got, l.Text)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d lines, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("line %d: %d bytes %.20q…, want %d bytes", i, len(got[i]), got[i], len(tc.want[i]))
				}
			}
		})
	}
}

// TestLivenessDegraded: a probe's DegradedError (a failure a restart
// would not fix) shows the component degraded with the reason at once,
// however long it lasts, without a restart; healthy again when it passes.
func TestLivenessDegraded(t *testing.T) {
	logs := NewLogs(100)
	a, _ := proc(t, logs, "chat", nil)
	var mu sync.Mutex
	down := false
	a.Live = ProbeFunc(func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return Degraded(errors.New("remote wss://chat.example: connection refused"))
		}
		return nil
	})
	a.LiveInterval = 20 * time.Millisecond
	s, _ := New([]Spec{a}, logs)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	setDown := func(v bool) { mu.Lock(); down = v; mu.Unlock() }
	wait := func(what string, cond func(ComponentStatus) bool) ComponentStatus {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			st := s.Status().Components[0]
			if cond(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: %+v", what, st)
			}
		}
	}
	setDown(true)
	st := wait("degraded", func(st ComponentStatus) bool { return st.State == StateDegraded })
	if st.Detail != "remote wss://chat.example: connection refused" {
		t.Errorf("degraded without the reason: %+v", st)
	}
	time.Sleep(300 * time.Millisecond) // fifteen failures: more than LiveFailures
	if st := s.Status().Components[0]; st.State != StateDegraded || st.Restarts != 0 {
		t.Errorf("after many failures: %+v", st)
	}
	setDown(false)
	wait("healthy again", func(st ComponentStatus) bool { return st.State == StateHealthy })
}

// TestExitBeforeReadyNamesItsCause: a component that exits before it is
// ready fails the start with its own last lines in the error (what it
// said, not the supervisor's notes), and they stay in its log.
func TestExitBeforeReadyNamesItsCause(t *testing.T) {
	logs := NewLogs(100)
	ps := &ProcService{Name: "vm", Logs: logs, Argv: []string{"sh", "-c",
		`echo starting the service; echo 'Error: cannot set up namespace: newuidmap: executable file not found in $PATH' >&2; exit 125`}}
	s, _ := New([]Spec{{Name: "vm", Service: ps, Ready: TCPProbe{Addr: freeAddr(t)}, ReadyTimeout: 10 * time.Second,
		Backoff: Backoff{MaxCrashes: 1}}}, logs)
	err := s.Start(t.Context())
	defer s.Stop()
	// Both lines, in the order they were read (stdout and stderr are
	// read apart: either may come first).
	for _, want := range []string{"exited before it was ready: exited: exit status 125 — its last output: ",
		"starting the service", "Error: cannot set up namespace: newuidmap: executable file not found in $PATH"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("start: %v\nwant it to contain %q", err, want)
		}
	}
}

// TestWaitingIsNeverGivenUp: a service that exits for a cause outside it
// (WaitingError) is restarted with the backoff however many times, where
// a crash would be given up on after MaxCrashes.
func TestWaitingIsNeverGivenUp(t *testing.T) {
	logs := NewLogs(100)
	var runs atomic.Int32
	s, _ := New([]Spec{{Name: "agent-1", Ready: ProbeFunc(func(context.Context) error { return nil }),
		Backoff: Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, StableAfter: time.Hour, MaxCrashes: 2},
		Service: ServiceFunc(func(ctx context.Context) error {
			if runs.Add(1) == 1 { // ready at first, then it loses its server
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
			}
			return Waiting(errors.New("the chat server is away"))
		})}}, logs)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	for deadline := time.Now().Add(10 * time.Second); runs.Load() < 20; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d runs", runs.Load())
		}
	}
	if st := s.Status().Components[0]; st.State == StateFailed || st.Crashes > 2 {
		t.Errorf("after %d runs: %+v", runs.Load(), st)
	}
}
