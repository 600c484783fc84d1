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
	y, err := Template(cfg, TemplateOptions{
		Forwards: SocketForwards("/run/user/1/thesystem/sockets/agentauth.sock", "/run/user/1/thesystem/podman.sock", "/run/user/1/thesystem/vm", false),
		Env:      env,
	})
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
		"cpus: 2", "memory: 4GiB", "disk: 20GiB",
		"guestSocket: /run/podman/podman.sock", "hostSocket: /run/user/1/thesystem/podman.sock",
		"guestSocket: /run/thesystem/sockets/agentauth.sock", "reverse: true",
		"guestSocket: /run/thesystem/services/chat.sock", "hostSocket: /run/user/1/thesystem/vm/chat.sock",
		"guestSocket: /run/thesystem/dashboard/dashboard.sock", "ignore: true", "ANTHROPIC_MODEL: claude-x", "ubuntu-24.04", "http://127.0.0.1:13000",
		"uid: 1000", "SocketUser=", "StreamLocalBindUnlink yes",
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
	if *full.CPUs != 2 {
		t.Errorf("cpus %d", *full.CPUs)
	}
	// No mount of Lima's (its reverse-sshfs dies with a sleep and is not
	// made again): the project comes over the engine's own link, tokens
	// over SSH.
	if len(full.Mounts) != 0 {
		t.Errorf("Lima mounts %+v", full.Mounts)
	}
}

func TestWriteTemplateRefusesInvalid(t *testing.T) {
	cfg := testConfig(t)
	y, _ := Template(cfg, TemplateOptions{Forwards: SocketForwards("/s/agentauth.sock", "/p", "/f", false)})
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

func TestTemplateDirectKernelBoot(t *testing.T) {
	cfg := testConfig(t)
	dir := t.TempDir()
	y, err := Template(cfg, TemplateOptions{Images: []Image{{
		Location: filepath.Join(dir, "disk.qcow2"), Arch: "x86_64",
		Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd.img"), Cmdline: "root=/dev/vda console=ttyS0",
	}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Render(y)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(t.Context(), b, filepath.Join(dir, "t.yaml")); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	for _, want := range []string{"kernel:", "cmdline: root=/dev/vda console=ttyS0", "initrd:", "legacyBIOS: true", "disk.qcow2"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("template lacks %q:\n%s", want, b)
		}
	}
}

// TestSocketForwardsClient: with a remote chat server the chat socket is
// the host's bridge, forwarded into the guest; the rest is as with a
// server of the stack's own.
func TestSocketForwardsClient(t *testing.T) {
	server, client := SocketForwards("/s/agentauth.sock", "/p", "/f", false), SocketForwards("/s/agentauth.sock", "/p", "/f", true)
	for i := range server {
		wantReverse := server[i].Reverse
		if server[i].Guest == GuestServiceDir+"/chat.sock" {
			if server[i].Reverse {
				t.Error("the chat socket goes into the guest with a server of the stack's own")
			}
			wantReverse = true
		}
		if client[i].Guest != server[i].Guest || client[i].Host != server[i].Host || client[i].Reverse != wantReverse {
			t.Errorf("forward %d: %+v with a remote, %+v without", i, client[i], server[i])
		}
	}
}
