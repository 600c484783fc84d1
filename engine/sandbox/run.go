package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Containers is what RunContainer needs of podman: a *Podman, or a fake.
type Containers interface {
	Start(id string) error
	Wait(id string) (int, error)
	Running(id string) (bool, error)
	Stop(id string, timeout time.Duration) error
	Remove(id string) error
	FollowLogs(ctx context.Context, id string, since time.Time, w io.WriteCloser)
}

// RunOptions say where a container's run reports and how long it waits.
type RunOptions struct {
	// Note receives the runner's own lines (lost link, link back, stopped).
	Note func(string)
	// Output makes a writer for the container's output (its logs are
	// followed again, from where they broke, when the link comes back).
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

// RunContainer starts a created container and waits for it; when ctx ends
// it is stopped (SIGTERM, StopTimeout, SIGKILL) and removed, and that is
// not an error. A broken link to podman (the VM's forward died with a host
// sleep) is not the container exiting: it waits again, and follows the
// logs again from where they broke, once the link is back.
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
	defer func() { _ = c.Remove(id) }()
	if err := c.Start(id); err != nil {
		return err
	}
	logCtx, stopLogs := context.WithCancel(ctx)
	defer stopLogs()
	if opt.Output != nil {
		go c.FollowLogs(logCtx, id, time.Time{}, opt.Output())
	}
	exited := make(chan error, 1)
	go func() {
		var broken time.Time
		for {
			code, err := c.Wait(id)
			if err == nil {
				exited <- fmt.Errorf("container exited with status %d", code)
				return
			}
			if !Unreachable(err) || ctx.Err() != nil {
				exited <- err
				return
			}
			if broken.IsZero() {
				broken = time.Now()
				note("lost the link to podman; waiting for it: " + err.Error())
			}
			if time.Since(broken) > opt.LinkGrace {
				exited <- fmt.Errorf("no link to podman for %s: %w", opt.LinkGrace, err)
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
				if opt.Output != nil {
					go c.FollowLogs(logCtx, id, broken, opt.Output())
				}
				broken = time.Time{}
			}
		}
	}()
	select {
	case err := <-exited:
		time.Sleep(100 * time.Millisecond) // let the last lines arrive
		return err
	case <-ctx.Done():
		_ = c.Stop(id, opt.StopTimeout)
		// Stopped: the wait sees it at podman's next look (waitInterval);
		// not waited for longer than the last lines take.
		select {
		case err := <-exited:
			if err != nil {
				note("stopped: " + err.Error())
			}
		case <-time.After(100 * time.Millisecond):
		}
		return nil
	}
}
