// Package supervise runs the stack's components: each is a Service with a
// readiness and a liveness probe, started in dependency order behind
// readiness gates and stopped in reverse; restarted on an unexpected exit
// or a failed liveness probe with capped, jittered exponential backoff; put
// in a visible failed state when it crash-loops. Child processes run in
// their own process group and are stopped SIGTERM → 5 s → SIGKILL, group
// and all. Every component's output is multiplexed line by line into
// bounded per-component logs with followers, and every state change is
// published to subscribers.
package supervise

import (
	"context"
	"errors"
	"fmt"
)

// Service is one component. Serve runs it until ctx is cancelled (then it
// returns, and a cancellation is not an error) or until it fails.
type Service interface {
	Serve(ctx context.Context) error
}

// ServiceFunc adapts a function to Service.
type ServiceFunc func(ctx context.Context) error

// Serve calls f.
func (f ServiceFunc) Serve(ctx context.Context) error { return f(ctx) }

// PermanentError marks a failure that restarting cannot fix (bad
// configuration, a missing binary): the component goes to failed at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so the supervisor does not restart the service.
func Permanent(err error) error { return &PermanentError{Err: err} }

// WaitingError is a service's exit for a cause outside it (a server it
// needs is away): it is restarted with the backoff as after a crash, but
// never given up on for it.
type WaitingError struct{ Err error }

func (e *WaitingError) Error() string { return e.Err.Error() }
func (e *WaitingError) Unwrap() error { return e.Err }

// Waiting wraps err as a WaitingError.
func Waiting(err error) error { return &WaitingError{Err: err} }

// DegradedError is a liveness probe's failure that a restart would not
// fix (a remote server away, a key store the user must unlock): the
// component shows degraded with it, at once, and is not restarted for it.
type DegradedError struct{ Err error }

func (e *DegradedError) Error() string { return e.Err.Error() }
func (e *DegradedError) Unwrap() error { return e.Err }

// Degraded wraps a probe's err as a DegradedError (nil stays nil).
func Degraded(err error) error {
	if err == nil {
		return nil
	}
	return &DegradedError{Err: err}
}

// IsPermanent reports whether err asks not to be restarted.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

type reporterKey struct{}

// Report tells the supervisor what a service is doing while it starts
// (installing, building an image…): it becomes the component's detail, is
// published to subscribers and logged. Outside a supervised service it
// does nothing.
func Report(ctx context.Context, format string, args ...any) {
	if f, ok := ctx.Value(reporterKey{}).(func(string)); ok {
		f(fmt.Sprintf(format, args...))
	}
}

// pider is implemented by services that run a process.
type pider interface{ PID() int }
