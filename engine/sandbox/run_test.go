package sandbox

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containers/podman/v5/pkg/errorhandling"
	"github.com/containers/podman/v5/pkg/specgen"
)

// fakeContainers is podman as RunContainer sees it, scripted: the attach
// fails before it is ready (attachErr) or ends once the container was
// started, with attachEnd (when ended; otherwise when it is stopped); each
// Running takes the next answer of running (the last one repeats), each
// Wait the next of waits (a lost link is a dial error, as the bindings
// give when the forwarded socket is gone); everything called is recorded.
type fakeContainers struct {
	mu        sync.Mutex
	attachErr error
	ended     bool
	attachEnd error
	running   []runAnswer
	waits     []waitAnswer
	calls     []string
	follows   []time.Time // the since of each FollowLogs
	started   chan struct{}
	block     chan struct{}
}

type waitAnswer struct {
	code int
	err  error
}

type runAnswer struct {
	running bool
	err     error
}

var errLinkLost = &net.OpError{Op: "dial", Net: "unix", Err: errors.New("connect: no such file or directory")}

func (f *fakeContainers) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeContainers) Attach(_ string, w io.Writer, ready chan bool) error {
	f.record("attach")
	if f.attachErr != nil {
		return f.attachErr
	}
	ready <- true
	<-f.started
	_, _ = io.WriteString(w, "output\n")
	if f.ended {
		return f.attachEnd
	}
	<-f.block // a container that runs until it is stopped
	return nil
}
func (f *fakeContainers) Start(string) error { f.record("start"); close(f.started); return nil }
func (f *fakeContainers) Wait(string) (int, error) {
	f.record("wait")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.waits) == 0 {
		return 143, nil // stopped
	}
	a := f.waits[0]
	f.waits = f.waits[1:]
	return a.code, a.err
}
func (f *fakeContainers) Running(string) (bool, error) {
	f.record("running")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.running) == 0 {
		return false, nil
	}
	a := f.running[0]
	if len(f.running) > 1 {
		f.running = f.running[1:]
	}
	return a.running, a.err
}
func (f *fakeContainers) Exited(id string) (bool, int, error) {
	running, err := f.Running(id)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[len(f.calls)-1] = "exited"
	if err != nil || running {
		return false, 0, err
	}
	if len(f.waits) == 0 {
		return true, 143, nil // stopped
	}
	a := f.waits[0]
	f.waits = f.waits[1:]
	return true, a.code, nil
}
func (f *fakeContainers) Stop(string, time.Duration) error {
	f.record("stop")
	close(f.block)
	return nil
}
func (f *fakeContainers) Remove(string) error { f.record("remove"); return nil }
func (f *fakeContainers) FollowLogs(_ context.Context, _ string, since time.Time, w io.WriteCloser) {
	f.mu.Lock()
	f.follows = append(f.follows, since)
	f.mu.Unlock()
	_ = w.Close()
}

// lines is an Output that keeps what it is given.
type lines struct {
	mu  *sync.Mutex
	buf *strings.Builder
}

func (l lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}
func (lines) Close() error { return nil }

// TestRunContainer: attach before start, the exit seen when the attach
// ends, and the link-loss loop, with podman faked (the real containers are
// every stack test's, the real link loss the real-VM test's).
func TestRunContainer(t *testing.T) {
	notFound := &errorhandling.ErrorModel{Message: "no such container", ResponseCode: 404}
	for _, tc := range []struct {
		name      string
		attachErr error
		ended     bool
		attachEnd error
		running   []runAnswer
		waits     []waitAnswer
		grace     time.Duration
		cancel    bool // ctx ends while it runs
		err       string
		notes     []string
		follows   int  // logs followed from where the attach ended
		started   bool // started (after the attach was ready)
	}{
		{name: "exits", ended: true, waits: []waitAnswer{{code: 3}}, err: "container exited with status 3", started: true},
		{name: "cannot attach", attachErr: notFound, err: "attach c1: no such container"},
		{name: "a podman error that is not the link", ended: true, running: []runAnswer{{err: notFound}}, err: "no such container", started: true},
		{name: "podman ends the attach while it runs: its log followed",
			ended: true, running: []runAnswer{{running: true}}, waits: []waitAnswer{{code: 0}}, err: "container exited with status 0",
			notes: []string{"podman ended the attach while the container runs"}, follows: 1, started: true},
		{name: "the link comes back: wait again, follow the logs from the break",
			ended: true, attachEnd: errLinkLost, running: []runAnswer{{err: errLinkLost}, {err: errLinkLost}, {running: true}},
			waits: []waitAnswer{{code: 0}}, err: "container exited with status 0",
			notes: []string{"lost the link to podman; waiting for it", "link to podman back after"}, follows: 1, started: true},
		{name: "the link breaks during a wait after podman ended the attach",
			ended: true, running: []runAnswer{{running: true}, {running: true}},
			waits: []waitAnswer{{err: errLinkLost}, {code: 0}}, err: "container exited with status 0",
			notes: []string{"podman ended the attach", "lost the link to podman", "link to podman back after"}, follows: 2, started: true},
		{name: "back, but the container stopped meanwhile",
			ended: true, attachEnd: errLinkLost, running: []runAnswer{{err: errLinkLost}, {running: false}},
			err: "container stopped while the link to podman was down", notes: []string{"lost the link"}, started: true},
		{name: "the link stays down past the grace",
			ended: true, attachEnd: errLinkLost, running: []runAnswer{{err: errLinkLost}},
			grace: 30 * time.Millisecond, err: "no link to podman for 30ms", started: true},
		{name: "the stack stops it", cancel: true, notes: []string{"stopped: container exited with status 143"}, started: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeContainers{attachErr: tc.attachErr, ended: tc.ended, attachEnd: tc.attachEnd,
				running: tc.running, waits: tc.waits, started: make(chan struct{}), block: make(chan struct{})}
			var mu sync.Mutex
			var notes []string
			var out strings.Builder
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancel {
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			err := RunContainer(ctx, f, "c1", RunOptions{
				Note:   func(s string) { mu.Lock(); notes = append(notes, s); mu.Unlock() },
				Output: func() io.WriteCloser { return lines{&mu, &out} },
				Retry:  10 * time.Millisecond, LinkGrace: tc.grace,
			})
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			calls := strings.Join(f.calls, " ")
			want := "attach remove"
			if tc.started {
				want = "attach start"
			}
			if !strings.HasPrefix(calls, want) || f.calls[len(f.calls)-1] != "remove" {
				t.Errorf("calls %q: %q first, remove last", calls, want)
			}
			if tc.ended && !tc.cancel && strings.Count(calls, "wait") > len(tc.waits)+1 {
				t.Errorf("calls %q: waited more than the script", calls)
			}
			if tc.cancel && !strings.Contains(calls, "stop") {
				t.Errorf("calls %q: not stopped", calls)
			}
			mu.Lock()
			defer mu.Unlock()
			for i, want := range tc.notes {
				if i >= len(notes) || !strings.HasPrefix(notes[i], want) {
					t.Errorf("notes %q, want %q first", notes, tc.notes)
					break
				}
			}
			if len(f.follows) != tc.follows {
				t.Errorf("followed the logs %d times, want %d", len(f.follows), tc.follows)
			}
			for _, since := range f.follows {
				if since.IsZero() {
					t.Errorf("a follow from the start (replaying what the attach gave): %v", f.follows)
				}
			}
			if tc.started && !strings.Contains(out.String(), "output") {
				t.Errorf("output %q: the attach's lines lost", out.String())
			}
		})
	}
}

// TestRunContainerPodman: RunContainer with a real podman service, the
// container's output taken from the attach made before its start: a
// container that talks and exits with a status, one that exits at once
// (before any attach made after the start could come: the exit is seen,
// the container not initialized again), and one the stack stops.
func TestRunContainerPodman(t *testing.T) {
	svc := startPodman(t)
	p, err := Connect(t.Context(), svc.socket)
	if err != nil {
		t.Fatal(err)
	}
	ref := testImage(t, p)
	for _, tc := range []struct {
		name, code, pause string
		stop              bool
		err               string
		out               []string
	}{
		{name: "talks and exits", code: "7", pause: "2s", err: "container exited with status 7", out: []string{"out-1", "err-1", "out-2"}},
		{name: "exits at once", code: "0", pause: "0s", err: "container exited with status 0", out: []string{"out-1", "err-1", "out-2"}},
		{name: "stopped by the stack", code: "0", pause: "1h", stop: true, out: []string{"out-1", "err-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := specgen.NewSpecGenerator(ref, false)
			g.Name = "run-" + strings.ReplaceAll(tc.name, " ", "-")
			g.Command = []string{"/netcheck", "talk", tc.code, tc.pause}
			g.NetNS = specgen.Namespace{NSMode: specgen.NoNetwork}
			id, err := p.create(g)
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var out strings.Builder
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			if tc.stop {
				go func() {
					for ctx.Err() == nil && !strings.Contains(func() string { mu.Lock(); defer mu.Unlock(); return out.String() }(), "err-1") {
						time.Sleep(50 * time.Millisecond)
					}
					cancel()
				}()
			}
			err = RunContainer(ctx, p, id, RunOptions{
				Output:      func() io.WriteCloser { return lines{&mu, &out} },
				Note:        func(s string) { t.Log(s) },
				StopTimeout: time.Second,
			})
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
			if !tc.stop && ctx.Err() != nil {
				t.Fatal("the exit was not seen within a minute")
			}
			mu.Lock()
			got := out.String()
			mu.Unlock()
			for _, want := range tc.out {
				if !strings.Contains(got, want+"\n") {
					t.Errorf("output %q lacks %q", got, want)
				}
			}
			if b, _ := svc.podman(t.Context(), "ps", "-a", "-q").Output(); len(strings.TrimSpace(string(b))) != 0 {
				t.Errorf("containers left: %s", b)
			}
		})
	}
}
