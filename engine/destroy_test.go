package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thesystem-dev/thesystem/engine/config"
)

// limaEngine is an engine with vm.driver lima over the recorded limactl
// (engine/vm/testdata): no VM boots; the real one is `make e2e-vm`.
func limaEngine(t *testing.T, initBinary string) (*Engine, config.Paths) {
	t.Helper()
	dir := t.TempDir()
	l, err := config.Parse("thesystem.yaml", []byte("vm:\n  driver: lima\nproxy:\n  port: 1\n"), dir,
		config.Options{LookupEnv: func(string) (string, bool) { return "", false }, GOOS: "linux", Home: dir})
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	paths := config.Paths{StateDir: state, RuntimeDir: filepath.Join(state, "run")}
	fake, err := filepath.Abs("vm/testdata/fake-limactl")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Config: l, Paths: paths, Sandbox: true, InitBinary: initBinary, Limactl: fake, RuntimeBinary: "/bin/echo"})
	if err != nil {
		t.Fatal(err)
	}
	return e, paths
}

// TestDestroyLima: destroy deletes the VM and what the host kept for it.
func TestDestroyLima(t *testing.T) {
	e, paths := limaEngine(t, "/bin/echo")
	inst := "thesystem-" + e.stackName()
	fake := filepath.Join(paths.LimaHome(), "fake")
	for _, d := range []string{fake, paths.GuestBinDir(), paths.AgentDir("agent-1")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(fake, inst), []byte("Stopped\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Destroy(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(fake, inst)); err == nil {
		t.Error("the VM is still there")
	}
	for _, d := range []string{paths.GuestBinDir(), paths.AgentsDir()} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s left", d)
		}
	}
	argv, _ := os.ReadFile(filepath.Join(paths.LimaHome(), "argv.log"))
	if !strings.Contains(string(argv), "delete --force "+inst) {
		t.Errorf("limactl calls:\n%s", argv)
	}
}
