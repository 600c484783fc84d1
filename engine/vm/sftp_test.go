package vm

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
)

// projectTree is a project with a file, a dir, and symlinks that point out
// of it (absolute and relative), beside a secret outside it.
func projectTree(t *testing.T) string {
	t.Helper()
	top := t.TempDir()
	dir := filepath.Join(top, "project")
	for p, c := range map[string]string{"project/README": "the project\n", "project/src/main.go": "package main\n", "secret": "host secret\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(top, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(top, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"out": top, "up": "../secret", "inside": "src/main.go"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func connected(t *testing.T) (client, server pipeEnd) {
	t.Helper()
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	return pipeEnd{cr, cw}, pipeEnd{sr, sw}
}

// TestServeReadOnly: an SFTP client (the guest's side, maybe hostile)
// reads the project, and cannot write, delete, rename, make anything, nor
// read anything outside it by "..", an absolute path or a symlink.
func TestServeReadOnly(t *testing.T) {
	dir := projectTree(t)
	c, s := connected(t)
	served := make(chan error, 1)
	go func() { served <- ServeReadOnly(dir, s) }()
	client, err := sftp.NewClientPipe(c.Reader, c.WriteCloser)
	if err != nil {
		t.Fatal(err)
	}
	read := func(p string) (string, error) {
		f, err := client.Open(p)
		if err != nil {
			return "", err
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		return string(b), err
	}
	if got, err := read("/README"); err != nil || got != "the project\n" {
		t.Errorf("README: %q %v", got, err)
	}
	if got, err := read("inside"); err != nil || got != "package main\n" {
		t.Errorf("a symlink inside: %q %v", got, err)
	}
	ents, err := client.ReadDir("/")
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	if err != nil || strings.Join(names, " ") != "README inside out src up" {
		t.Errorf("ReadDir: %v %v", names, err)
	}
	if fi, err := client.Lstat("/out"); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("Lstat of a symlink: %v %v", fi, err)
	}
	for _, p := range []string{"/../secret", "../../secret", "/out/secret", "up", "out/project/README"} {
		if got, err := read(p); err == nil {
			t.Errorf("read %s outside the project: %q", p, got)
		}
		if _, err := client.Stat(p); err == nil {
			t.Errorf("stat %s outside the project", p)
		}
	}
	if _, err := client.ReadDir("/out"); err == nil {
		t.Error("listed a dir outside the project")
	}
	if got, err := client.ReadLink("/up"); err != nil || got != "../secret" {
		t.Errorf("ReadLink: %q %v", got, err)
	}
	for name, op := range map[string]func() error{
		"create": func() error { _, err := client.Create("/new"); return err },
		"write":  func() error { _, err := client.OpenFile("/README", os.O_WRONLY); return err },
		"remove": func() error { return client.Remove("/README") },
		"mkdir":  func() error { return client.Mkdir("/d") },
		"rename": func() error { return client.Rename("/README", "/R") },
		"chmod":  func() error { return client.Chmod("/README", 0o777) },
		"link":   func() error { return client.Symlink("/etc/passwd", "/p") },
	} {
		if err := op(); err == nil {
			t.Errorf("%s was allowed", name)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "README")); err != nil || string(b) != "the project\n" {
		t.Errorf("the project changed: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a file was made")
	}
	_ = client.Close()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the server did not end with its client")
	}
}

// TestServeReadOnlySSHFS: the real sshfs (the VM's client) mounts the
// project from the server over two pipes (-o passive, as the guest runs it
// over SSH): files read, writes refused, the mount gone when its link is.
func TestServeReadOnlySSHFS(t *testing.T) {
	sshfs, err := exec.LookPath("sshfs")
	if err != nil {
		if os.Getenv("THESYSTEM_TEST_PODMAN") == "1" {
			t.Fatal("sshfs is missing (make deps installs it)")
		}
		t.Skip(err)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil || os.Getuid() != 0 {
		t.Skip("needs root and /dev/fuse to mount")
	}
	dir := projectTree(t)
	mnt := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sshfs, "-f", "-o", "passive,ro", ":/", mnt)
	toServer, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	fromServer, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- ServeReadOnly(dir, pipeEnd{toServer, fromServer}) }()
	defer func() {
		_ = exec.CommandContext(context.Background(), "fusermount3", "-u", "-z", mnt).Run()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	var b []byte
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if b, err = os.ReadFile(filepath.Join(mnt, "src", "main.go")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mount never served the project: %v\n%s", err, stderr.String())
		}
	}
	if string(b) != "package main\n" {
		t.Errorf("read through sshfs: %q", b)
	}
	if err := os.WriteFile(filepath.Join(mnt, "new"), []byte("x"), 0o644); err == nil {
		t.Error("wrote through the mount")
	}
	if err := os.Remove(filepath.Join(mnt, "README")); err == nil {
		t.Error("removed through the mount")
	}
	// The link goes (the SSH connection dies): sshfs ends, the server too.
	_ = cmd.Process.Kill()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Error("the server outlived its link")
	}
}
