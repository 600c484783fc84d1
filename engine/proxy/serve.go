package proxy

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/thesystem-dev/thesystem/engine/listeners"
)

// Serve answers on ln until ctx is cancelled. Cancellation is not an
// error; it closes every connection at once, so stopping the proxy cuts
// every agent off immediately.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	kind := "tcp"
	if _, ok := ln.Addr().(*net.UnixAddr); ok {
		kind = "unix"
	}
	srv := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ConnContext: func(c context.Context, _ net.Conn) context.Context {
			return context.WithValue(c, connKindKey{}, kind)
		},
		ErrorLog: nil,
	}
	return listeners.ServeHTTP(ctx, srv, ln)
}
