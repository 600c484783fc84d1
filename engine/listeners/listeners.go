// Package listeners serves one server on several listeners at once.
package listeners

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
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

// Limits every local server gets where it sets none: a slow client or a
// flood of them holds neither memory nor goroutines without bound.
const (
	ReadHeaderTimeout = 10 * time.Second
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 64 << 10
	MaxConns          = 512
)

// ServeHTTP runs srv on ln until ctx ends, then closes it and every
// connection at once; cancellation is not an error. srv gets the limits
// above where it has none, and ln at most MaxConns connections at once.
func ServeHTTP(ctx context.Context, srv *http.Server, ln net.Listener) error {
	if srv.ReadHeaderTimeout == 0 {
		srv.ReadHeaderTimeout = ReadHeaderTimeout
	}
	if srv.IdleTimeout == 0 {
		srv.IdleTimeout = IdleTimeout
	}
	if srv.MaxHeaderBytes == 0 {
		srv.MaxHeaderBytes = MaxHeaderBytes
	}
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	err := srv.Serve(Limit(ln, MaxConns))
	if errors.Is(err, http.ErrServerClosed) && ctx.Err() != nil {
		return nil
	}
	return err
}

// Limit is ln with at most n connections open at once: one more is closed
// as soon as it is accepted (fail fast, rather than wait behind clients
// that hold their connections open).
func Limit(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n)}
}

type limitListener struct {
	net.Listener
	slots chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			_ = c.Close()
		}
	}
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
