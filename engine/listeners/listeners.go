// Package listeners serves one server on several listeners at once.
package listeners

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
)

// Serve calls serve for every listener until ctx ends (nil) or one of
// them fails: then the others are stopped and its error returned.
func Serve(ctx context.Context, serve func(context.Context, net.Listener) error, lns ...net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(lns))
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Go(func() {
			if err := serve(ctx, ln); err != nil {
				errs <- err
				cancel()
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// ServeHTTP runs srv on ln until ctx ends, then closes it and every
// connection at once; cancellation is not an error.
func ServeHTTP(ctx context.Context, srv *http.Server, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) && ctx.Err() != nil {
		return nil
	}
	return err
}
