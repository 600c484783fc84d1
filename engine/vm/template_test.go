package vm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lima-vm/lima/v2/pkg/limayaml"

	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
)

func testConfig(t *testing.T) config.Config {
	t.Helper()
	l, err := config.Parse("thesystem.yaml", []byte("vm:\n  cpus: 2\n  memory: 4GiB\n  disk: 20GiB\nserver:\n  port: 16667\n  dashboard: 13000\n"),
		t.TempDir(), config.Options{LookupEnv: func(string) (string, bool) { return "", false }, GOOS: "darwin", Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return l.Config
}

func TestTemplateValidates(t *testing.T) {
	cfg := testConfig(t)
	const planted = "sk-ant-api03-PLANTEDvmKEY0123456789abcdef"
	env, _ := sandbox.ForwardEnv([]string{"ANTHROPIC_MODEL=claude-x", "ANTHROPIC_API_KEY=" + planted, "THESYSTEM_NOTE=" + planted, "HOME=/root"})
	y, err := Template(cfg, TemplateOptions{HostSocketDir: "/run/user/1/thesystem/sockets", HostPodmanSocket: "/run/user/1/thesystem/podman.sock",
		HostForwardDir: "/run/user/1/thesystem/vm", Env: env})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Render(y)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "thesystem.yaml")
	if err := Validate(t.Context(), b, path); err != nil {
		t.Fatalf("the generated template does not validate: %v\n%s", err, b)
	}
	text := string(b)
	if strings.Contains(text, "PLANTED") {
		t.Fatalf("a key reached the VM template:\n%s", text)
	}
	for _, want := range []string{
		"cpus: 2", "memory: 4GiB", "disk: 20GiB", "writable: false", "mountPoint: /project",
		"guestSocket: /run/podman/podman.sock", "hostSocket: /run/user/1/thesystem/podman.sock",
		"guestSocket: /run/thesystem/sockets/agentauth.sock", "reverse: true",
		"guestSocket: /run/thesystem/services/chat.sock", "hostSocket: /run/user/1/thesystem/vm/chat.sock",
		"guestSocket: /run/thesystem/services/dashboard.sock", "ignore: true", "ANTHROPIC_MODEL: claude-x", "ubuntu-24.04", "http://127.0.0.1:13000",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("template lacks %q:\n%s", want, text)
		}
	}
	// What limactl will use after defaults.
	full, err := limayaml.Load(t.Context(), b, path)
	if err != nil {
		t.Fatal(err)
	}
	if *full.Containerd.System || *full.Containerd.User {
		t.Error("containerd should be off")
	}
	if *full.CPUs != 2 || *full.Mounts[0].Writable {
		t.Errorf("cpus %d writable %v", *full.CPUs, *full.Mounts[0].Writable)
	}
}

func TestWriteTemplateRefusesInvalid(t *testing.T) {
	cfg := testConfig(t)
	y, _ := Template(cfg, TemplateOptions{HostSocketDir: "/s", HostPodmanSocket: "/p"})
	y.Images = nil // Lima needs at least one image
	path := filepath.Join(t.TempDir(), "bad.yaml")
	err := WriteTemplate(t.Context(), y, path)
	if err == nil || !strings.Contains(err.Error(), "lima template "+path) {
		t.Fatalf("an invalid template: %v", err)
	}
	if _, statErr := os.Stat(path); statErr == nil {
		t.Error("the invalid template was written anyway")
	}
}
