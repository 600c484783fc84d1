package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/guest"
	"github.com/thesystem-dev/thesystem/engine/vm"
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

func TestLimaTierPaths(t *testing.T) {
	e, paths := limaEngine(t, "/bin/echo")
	tr := e.tier
	if tr.lima == nil || tr.driver.ProxyDir() != vm.GuestSocketDir || tr.serviceDir != vm.GuestServiceDir ||
		tr.projectDir != vm.GuestProjectDir || tr.initBinary != vm.GuestInitBinary {
		t.Fatalf("guest paths: %+v", tr)
	}
	if !strings.HasPrefix(tr.driver.PodmanSocket(), paths.LimaHome()) || !strings.HasPrefix(tr.chatSocket, paths.VMForwardDir()) {
		t.Errorf("host sockets: %s %s", tr.driver.PodmanSocket(), tr.chatSocket)
	}
	// The template gets the proxy socket forwarded in, the token dir
	// mounted (the init binary is copied to the guest's disk: not through
	// sshfs), and no key from this environment.
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-api03-PLANTEDtierKEY0123456789abcdef")
	y, err := tr.lima.Template()
	if err != nil {
		t.Fatal(err)
	}
	b, err := vm.Render(y)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{paths.ProxySocket(), "reverse: true", paths.AgentsDir(), "mountPoint: /mnt/thesystem/agents", "propagateProxyEnv: false"} {
		if !strings.Contains(text, want) {
			t.Errorf("template lacks %q", want)
		}
	}
	if strings.Contains(text, paths.GuestBinDir()) {
		t.Error("the init binary's dir is mounted into the VM")
	}
	if strings.Contains(text, "PLANTED") {
		t.Fatal("a key reached the template")
	}
}

// TestAgentTokenDirs: each run of an agent gets a token dir of its own
// (no file cache in the VM can serve a revoked token), the earlier ones go,
// and podman is given the guest's path.
func TestAgentTokenDirs(t *testing.T) {
	e, paths := limaEngine(t, "/bin/echo")
	first, err := e.writeAgentToken("agent-1", "tsa_one", nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.writeAgentToken("agent-1", "tsa_two", nil)
	if err != nil {
		t.Fatal(err)
	}
	if first == second || !strings.HasPrefix(second, vm.GuestShareDir+"/agents/agent-1/") {
		t.Fatalf("token dirs %s then %s", first, second)
	}
	runs, _ := os.ReadDir(paths.AgentDir("agent-1"))
	if len(runs) != 1 || runs[0].Name() != filepath.Base(second) {
		t.Fatalf("left on the host: %v", runs)
	}
	b, err := os.ReadFile(filepath.Join(paths.AgentDir("agent-1"), runs[0].Name(), guest.TokenFile))
	if err != nil || string(b) != "tsa_two\n" {
		t.Fatalf("token file: %q %v", b, err)
	}
}

func TestGuestInit(t *testing.T) {
	script := filepath.Join(t.TempDir(), "thesystem")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, bin, want string
	}{
		{"elf", "/bin/echo", ""},
		{"not linux", script, "is not a linux binary"},
		{"missing", "/nonexistent/thesystem-linux-arm64", "the linux build of thesystem for the VM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := limaEngine(t, tc.bin)
			got, err := e.guestInit()
			if tc.want == "" {
				if err != nil || got != tc.bin {
					t.Fatalf("guestInit = %q, %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestDestroyLima: destroy deletes the VM and what the host kept for it.
func TestDestroyLima(t *testing.T) {
	e, paths := limaEngine(t, "/bin/echo")
	inst := e.tier.lima.Instance
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
