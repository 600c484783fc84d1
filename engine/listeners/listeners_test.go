package listeners

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestServe(t *testing.T) {
	var lc net.ListenConfig
	a, _ := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	b, _ := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	boom := errors.New("boom")
	start := time.Now()
	err := Serve(t.Context(), func(ctx context.Context, ln net.Listener) error {
		if ln == b {
			return boom
		}
		<-ctx.Done() // stopped by b's failure
		return nil
	}, a, b)
	if !errors.Is(err, boom) || time.Since(start) > 5*time.Second {
		t.Fatalf("Serve = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Serve(ctx, func(ctx context.Context, _ net.Listener) error { <-ctx.Done(); return nil }, a); err != nil {
		t.Fatalf("cancelled: %v", err)
	}
}
