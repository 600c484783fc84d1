package listeners

import (
	"context"
	"errors"
	"net"
	"os"
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

func TestLimit(t *testing.T) {
	var lc net.ListenConfig
	inner, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Limit(inner, 2)
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	closed := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
	}
	dial()
	dial()
	a1, a2 := <-accepted, <-accepted
	if third := dial(); !closed(third) {
		t.Fatal("a third connection was kept over the cap of 2")
	}
	_ = a1.Close() // a slot frees
	dial()
	select {
	case a3 := <-accepted:
		_ = a3.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("no connection taken after one closed")
	}
	_ = a2.Close()
}
