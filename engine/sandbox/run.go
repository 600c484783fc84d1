package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Containers is what RunContainer needs of podman: a *Podman, or a fake.
type Containers interface {
	Attach(id string, w io.Writer, ready chan bool) error
	Start(id string) error
	Wait(id string) (int, error)
	Running(id string) (bool, error)
	Exited(id string) (bool, int, error)
	Stop(id string, timeout time.Duration) error
	Remove(id string) error
	FollowLogs(ctx context.Context, id string, since time.Time, w io.WriteCloser)
}

// RunOptions say where a container's run reports and how long it waits.
type RunOptions struct {
	// Note receives the runner's own lines (lost link, link back, stopped).
	Note func(string)
	// Output makes a writer for the container's output (its logs are
	// followed, from where the attach ended, when the link comes back).
	Output func() io.WriteCloser
	// LinkGrace is how long the container is waited on without a link to
	// podman before it counts as failed; 0: 2 minutes (the VM's forwards
	// are checked every 5 s).
	LinkGrace time.Duration
	// Retry is how often a lost link is tried again; 0: a second.
	Retry time.Duration
	// StopTimeout is SIGTERM's grace before SIGKILL when ctx ends.
	StopTimeout time.Duration
}

// RunContainer attaches to a created container, starts it and waits for
// it; when ctx ends it is stopped (SIGTERM, StopTimeout, SIGKILL) and
// removed, and that is not an error.
//
// While the attach lasts nothing is asked of podman: the attach ending is
// the container's exit (or a broken link), and only then is podman asked
// how it stands. A broken link to podman (the VM's forward died with a
// host sleep) is not the container exiting: it waits again, and follows
// the logs from where the attach ended, once the link is back.
func RunContainer(ctx context.Context, c Containers, id string, opt RunOptions) error {
	if opt.LinkGrace <= 0 {
		opt.LinkGrace = 2 * time.Minute
	}
	if opt.Retry <= 0 {
		opt.Retry = time.Second
	}
	note := opt.Note
	if note == nil {
		note = func(string) {}
	}
	output := opt.Output
	if output == nil {
		output = func() io.WriteCloser { return discard{} }
	}
	defer func() { _ = c.Remove(id) }()

	out := output()
	ready := make(chan bool, 1)
	attached := make(chan error, 1)
	go func() {
		err := c.Attach(id, out, ready)
		_ = out.Close()
		attached <- err
	}()
	select {
	case <-ready:
	case err := <-attached:
		return fmt.Errorf("attach %s: %w", id, err)
	case <-ctx.Done():
		return nil
	}
	if err := c.Start(id); err != nil {
		return err
	}
	logCtx, stopLogs := context.WithCancel(ctx)
	defer stopLogs()
	var follows sync.WaitGroup
	follow := func(since time.Time) {
		follows.Add(1)
		go func() {
			defer follows.Done()
			c.FollowLogs(logCtx, id, since, output())
		}()
	}
	exited := make(chan error, 1)
	go func() {
		aerr := <-attached
		ended := time.Now()
		// The attach ended: the container exited (the usual end), the
		// link broke, or podman ended it while the container runs.
		var broken time.Time
		done, code, err := c.Exited(id)
		// The output ends a moment before podman records the exit
		// (conmon writes it once the process is reaped): looked at
		// again for up to 2 s before the attach counts as ended early.
		step := min(opt.Retry, 100*time.Millisecond)
		for i := 0; err == nil && !done && ctx.Err() == nil && time.Duration(i)*step < 2*time.Second; i++ {
			time.Sleep(step)
			done, code, err = c.Exited(id)
		}
		switch {
		case err == nil && done:
			exited <- fmt.Errorf("container exited with status %d", code)
			return
		case err == nil:
			note("podman ended the attach while the container runs; following its log")
			follow(ended)
		case Unreachable(err) && ctx.Err() == nil:
			broken = ended
			note("lost the link to podman; waiting for it: " + err.Error())
		case ctx.Err() == nil:
			if aerr != nil {
				err = fmt.Errorf("%w (the attach: %w)", err, aerr)
			}
			exited <- err
			return
		}
		for {
			if broken.IsZero() {
				code, err := c.Wait(id)
				if err == nil {
					exited <- fmt.Errorf("container exited with status %d", code)
					return
				}
				if !Unreachable(err) || ctx.Err() != nil {
					exited <- err
					return
				}
				broken = time.Now()
				note("lost the link to podman; waiting for it: " + err.Error())
			}
			if time.Since(broken) > opt.LinkGrace {
				exited <- fmt.Errorf("no link to podman for %s", opt.LinkGrace)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(opt.Retry):
			}
			if running, err := c.Running(id); err == nil {
				if !running {
					exited <- errors.New("container stopped while the link to podman was down")
					return
				}
				note(fmt.Sprintf("link to podman back after %s", time.Since(broken).Round(time.Second)))
				follow(broken)
				broken = time.Time{}
			}
		}
	}()
	select {
	case err := <-exited:
		// A followed log ends with the container: its last lines first.
		linesIn(&follows, time.Second)
		return err
	case <-ctx.Done():
		_ = c.Stop(id, opt.StopTimeout)
		// Stopped: the attach ends with it; not waited for longer than
		// the last lines take.
		select {
		case err := <-exited:
			if err != nil {
				note("stopped: " + err.Error())
			}
		case <-time.After(time.Second):
		}
		return nil
	}
}

// linesIn waits for the follows to end, at most d.
func linesIn(follows *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { follows.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// discard is an Output that keeps nothing.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Close() error                { return nil }
