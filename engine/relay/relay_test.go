package relay

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// echo serves on ln: it reads a line, answers it, and after the client
// closes its side for writing, says "bye" (a relay must carry the half
// close both ways).
func echo(t *testing.T, ln net.Listener) {
	t.Helper()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				_, _ = io.WriteString(c, "echo "+line)
				_, _ = io.Copy(io.Discard, c) // until the client's half close
				_, _ = io.WriteString(c, "bye\n")
			}()
		}
	}()
}

func roundTrip(t *testing.T, network, addr string) {
	t.Helper()
	c, err := (&net.Dialer{}).DialContext(t.Context(), network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	if got, _ := r.ReadString('\n'); got != "echo hello\n" {
		t.Fatalf("got %q", got)
	}
	_ = c.(interface{ CloseWrite() error }).CloseWrite()
	if got, _ := r.ReadString('\n'); got != "bye\n" {
		t.Fatalf("after the half close: %q", got)
	}
}

func TestForwardBothWays(t *testing.T) {
	dir := t.TempDir()
	var lc net.ListenConfig

	// TCP on the loopback → a unix socket (the host's ports, a container's
	// loopback).
	sock := filepath.Join(dir, "service.sock")
	ul, err := lc.Listen(t.Context(), "unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	echo(t, ul)
	fwd, err := Forward(t.Context(), "127.0.0.1:0", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	roundTrip(t, "tcp", fwd.Addr().String())

	// A unix socket → TCP (a server that cannot listen on a socket).
	tl, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	echo(t, tl)
	back := filepath.Join(dir, "to-tcp.sock")
	rev, err := ForwardToTCP(t.Context(), back, tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer rev.Close()
	if fi, err := os.Stat(back); err != nil || fi.Mode().Perm() != 0o666 {
		t.Errorf("the socket's mode: %v %v (its dir decides who reaches it)", fi.Mode(), err)
	}
	roundTrip(t, "unix", back)

	// A port in use is an error that names it.
	if _, err := Forward(t.Context(), fwd.Addr().String(), sock); err == nil {
		t.Error("listening on a port in use worked")
	}
}
