// Package relay relays connections between a TCP address and a unix
// socket: the host's loopback ports to the services' sockets, and inside a
// container its loopback to the host's sockets.
package relay

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
)

// Forward listens on addr and relays every connection to the unix socket,
// until the listener is closed.
func Forward(ctx context.Context, addr, socket string) (net.Listener, error) {
	return relayListener(ctx, "tcp", addr, "unix", socket)
}

// ForwardToTCP listens on the unix socket and relays every connection to
// the TCP address (a server that cannot listen on a socket itself).
func ForwardToTCP(ctx context.Context, socket, addr string) (net.Listener, error) {
	ln, err := relayListener(ctx, "unix", socket, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// The directory decides who reaches it (the containers' agent user).
	if err := os.Chmod(socket, 0o666); err != nil {
		_ = ln.Close()
		return nil, err
	}
	return ln, nil
}

func relayListener(ctx context.Context, lnNet, lnAddr, dialNet, dialAddr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, lnNet, lnAddr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", lnAddr, err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go relay(ctx, c, dialNet, dialAddr)
		}
	}()
	return ln, nil
}

type closeWriter interface{ CloseWrite() error }

func relay(ctx context.Context, c net.Conn, network, addr string) {
	defer func() { _ = c.Close() }()
	u, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return
	}
	defer func() { _ = u.Close() }()
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(u, c)
		if cw, ok := u.(closeWriter); ok {
			_ = cw.CloseWrite()
		}
	})
	_, _ = io.Copy(c, u)
	if cw, ok := c.(closeWriter); ok {
		_ = cw.CloseWrite()
	}
	wg.Wait()
}
