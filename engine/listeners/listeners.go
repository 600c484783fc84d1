// Package listeners serves one server on several listeners at once.
package listeners

import (
	"context"
	"net"
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
