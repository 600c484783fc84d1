package unixsock

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	path := filepath.Join(dir, "s.sock")
	ctx := t.Context()

	ln, err := Listen(ctx, path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	di, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Errorf("modes: socket %v dir %v", fi.Mode().Perm(), di.Mode().Perm())
	}

	// A live socket is never stolen.
	if _, err := Listen(ctx, path, 0o600); !errors.Is(err, ErrInUse) {
		t.Fatalf("second listen on a live socket: %v", err)
	}

	// A stale one (its listener gone, the file left) is replaced.
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	_ = ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket file should still be there: %v", err)
	}
	ln2, err := Listen(ctx, path, 0o660)
	if err != nil {
		t.Fatalf("stale socket not recovered: %v", err)
	}
	defer ln2.Close()
	c, err := (&net.Dialer{}).DialContext(ctx, "unix", path)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()

	// A regular file in the way is not removed.
	file := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(ctx, file, 0o600); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("file in the way: %v", err)
	}
}
