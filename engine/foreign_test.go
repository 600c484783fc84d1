package engine

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/thesystem-dev/thesystem/engine/config"
)

// TestForeignHostRefusesNone: on a host treated as foreign (a Mac, or
// THESYSTEM_FOREIGN_HOST=1), vm.driver none — the host's own podman — is
// refused at start with what to set instead, before anything runs.
func TestForeignHostRefusesNone(t *testing.T) {
	dir := t.TempDir()
	l, err := config.Parse("thesystem.yaml", []byte("vm:\n  driver: none\n"), dir,
		config.Options{LookupEnv: func(string) (string, bool) { return "", false }, Home: dir, GOOS: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Config: l, Paths: config.Paths{StateDir: filepath.Join(dir, "s"), RuntimeDir: filepath.Join(dir, "r")},
		Sandbox: true, ForeignHost: true})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), "set vm.driver: lima") {
		t.Fatalf("start: %v", err)
	}
	if e.Status().Running {
		t.Error("something started")
	}
}
