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
)

// fakeContainers is podman as RunContainer sees it, scripted: each Wait
// takes the next answer of waits (a lost link is a dial error, as the
// bindings give when the forwarded socket is gone), Running answers
// running, and everything called is recorded.
type fakeContainers struct {
	mu      sync.Mutex
	waits   []waitAnswer
	running func() (bool, error)
	calls   []string
	follows []time.Time // the since of each FollowLogs
	block   chan struct{}
}

type waitAnswer struct {
	code int
	err  error
}

var errLinkLost = &net.OpError{Op: "dial", Net: "unix", Err: errors.New("connect: no such file or directory")}

func (f *fakeContainers) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeContainers) Start(string) error { f.record("start"); return nil }
func (f *fakeContainers) Wait(string) (int, error) {
	f.record("wait")
	f.mu.Lock()
	if len(f.waits) == 0 {
		f.mu.Unlock()
		<-f.block // a container that runs until it is stopped
		return 143, nil
	}
	a := f.waits[0]
	f.waits = f.waits[1:]
	f.mu.Unlock()
	return a.code, a.err
}
func (f *fakeContainers) Running(string) (bool, error) { f.record("running"); return f.running() }
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

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// TestRunContainer: the link-loss loop, with podman faked (the real
// link loss is the real-VM test's).
func TestRunContainer(t *testing.T) {
	up := func() (bool, error) { return true, nil }
	for _, tc := range []struct {
		name    string
		waits   []waitAnswer
		running func() (bool, error)
		grace   time.Duration
		cancel  bool // ctx ends while it runs
		err     string
		notes   []string
		follows int
	}{
		{name: "exits", waits: []waitAnswer{{code: 3}}, err: "container exited with status 3", follows: 1},
		{name: "a podman error that is not the link", waits: []waitAnswer{{err: &errorhandling.ErrorModel{Message: "no such container", ResponseCode: 404}}}, err: "no such container", follows: 1},
		{name: "the link comes back: wait again, follow the logs from the break",
			waits: []waitAnswer{{err: errLinkLost}, {code: 0}}, running: up, err: "container exited with status 0",
			notes: []string{"lost the link to podman; waiting for it", "link to podman back after"}, follows: 2},
		{name: "back, but the container stopped meanwhile",
			waits: []waitAnswer{{err: errLinkLost}}, running: func() (bool, error) { return false, nil },
			err: "container stopped while the link to podman was down", notes: []string{"lost the link"}, follows: 1},
		{name: "the link stays down past the grace",
			waits: []waitAnswer{{err: errLinkLost}, {err: errLinkLost}, {err: errLinkLost}, {err: errLinkLost}}, running: func() (bool, error) { return false, errLinkLost },
			grace: 30 * time.Millisecond, err: "no link to podman for 30ms", follows: 1},
		{name: "the stack stops it", cancel: true, follows: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeContainers{waits: tc.waits, running: tc.running, block: make(chan struct{})}
			var mu sync.Mutex
			var notes []string
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancel {
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			err := RunContainer(ctx, f, "c1", RunOptions{
				Note:   func(s string) { mu.Lock(); notes = append(notes, s); mu.Unlock() },
				Output: func() io.WriteCloser { return nopCloser{io.Discard} },
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
			if f.calls[0] != "start" || f.calls[len(f.calls)-1] != "remove" {
				t.Errorf("calls %v: start first, remove last", f.calls)
			}
			if tc.cancel && !strings.Contains(strings.Join(f.calls, " "), "stop") {
				t.Errorf("calls %v: not stopped", f.calls)
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
			if tc.follows == 2 && (!f.follows[0].IsZero() || f.follows[1].IsZero()) {
				t.Errorf("the second follow starts from the break: %v", f.follows)
			}
		})
	}
}
