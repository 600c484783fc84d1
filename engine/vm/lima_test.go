package vm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lima-vm/lima/v2/pkg/limatype"

	"github.com/thesystem-dev/thesystem/engine/sandbox"
)

func fakeLima(t *testing.T) (*Lima, string) {
	t.Helper()
	home := t.TempDir()
	bin, err := filepath.Abs("testdata/fake-limactl")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	return &Lima{
		Instance: "thesystem", Home: home, Runner: ExecRunner{Path: bin, Home: home},
		Template: func() (*limatype.LimaYAML, error) {
			return Template(cfg, TemplateOptions{Forwards: SocketForwards("/s/agentauth.sock", filepath.Join(home, "thesystem", "sock", "podman.sock"), "/f", false)})
		},
	}, home
}

func argv(t *testing.T, home string) []string {
	b, _ := os.ReadFile(filepath.Join(home, "argv.log"))
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestLimaLifecycle(t *testing.T) {
	l, home := fakeLima(t)
	ctx := t.Context()
	if st, err := l.Status(ctx); err != nil || st.State != StateMissing {
		t.Fatalf("fresh: %+v %v", st, err)
	}
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := l.Status(ctx); st.State != StateRunning {
		t.Fatalf("after start: %+v", st)
	}
	// The template limactl got is the validated one.
	b, err := os.ReadFile(filepath.Join(home, "created-template.yaml"))
	if err != nil || Validate(ctx, b, filepath.Join(home, "t.yaml")) != nil || !strings.Contains(string(b), "guestSocket: /run/podman/podman.sock") {
		t.Fatalf("created from %s (%v)", b, err)
	}
	if err := l.Start(ctx); err != nil { // running: nothing to do
		t.Fatal(err)
	}
	if err := l.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Start(ctx); err != nil { // stopped: start, no create
		t.Fatal(err)
	}
	if err := l.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := l.Status(ctx); st.State != StateMissing {
		t.Fatalf("after delete: %+v", st)
	}
	var ops []string
	for _, a := range argv(t, home) {
		if f := strings.Fields(a); len(f) > 0 && f[0] != "list" {
			ops = append(ops, f[0])
		}
	}
	if strings.Join(ops, " ") != "create start stop start delete" {
		t.Errorf("limactl calls: %v", ops)
	}
	if l.PodmanSocket() != filepath.Join(home, "thesystem", "sock", "podman.sock") {
		t.Errorf("podman socket %s", l.PodmanSocket())
	}
}

func TestLimaErrors(t *testing.T) {
	for _, tc := range []struct {
		fail, want string
	}{
		{"start:qemu", "QEMU is not installed"},
		{"create:disk", "the disk is full"},
		{"start:degraded", "the VM came up degraded (the guest agent or a probe failed); see `thesystem logs vm`"},
	} {
		t.Run(tc.fail, func(t *testing.T) {
			l, _ := fakeLima(t)
			t.Setenv("LIMA_FAKE_FAIL", tc.fail)
			if err := l.Start(t.Context()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start = %v, want %q", err, tc.want)
			}
		})
	}
	// Only Lima's guest agent missing, the VM running: not the stack's
	// concern (it uses no port forward of the agent's nor Lima's sharing).
	t.Run("start:noagent", func(t *testing.T) {
		l, _ := fakeLima(t)
		t.Setenv("LIMA_FAKE_FAIL", "start:noagent")
		if err := l.Start(t.Context()); err != nil {
			t.Errorf("Start without Lima's guest agent = %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		l, home := fakeLima(t)
		t.Setenv("LIMA_FAKE_FAIL", "start:hang")
		l.StartTimeout = 300 * time.Millisecond
		err := l.Start(t.Context())
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not start within 300ms; see "+filepath.Join(home, "thesystem", "ha.stderr.log")) {
			t.Errorf("Start = %v", err)
		}
	})
	t.Run("no limactl", func(t *testing.T) {
		l, _ := fakeLima(t)
		l.Runner = ExecRunner{Path: filepath.Join(t.TempDir(), "limactl"), Home: l.Home}
		if _, err := l.Status(t.Context()); err == nil {
			t.Error("a missing limactl went unnoticed")
		}
		t.Setenv("PATH", t.TempDir())
		l.Runner = ExecRunner{Home: l.Home}
		if _, err := l.Status(t.Context()); !errors.Is(err, ErrNoLimactl) {
			t.Errorf("Status = %v", err)
		}
	})
}

func TestFindLimactl(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "thesystem")
	if err := os.WriteFile(self, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := func() (string, error) { return self, nil }
	onPath := func(string) (string, error) { return "/usr/bin/limactl", nil }
	none := func(string) (string, error) { return "", errors.New("not found") }

	if p, err := FindLimactl(exe, onPath); err != nil || p != "/usr/bin/limactl" {
		t.Errorf("PATH: %q %v", p, err)
	}
	if _, err := FindLimactl(exe, none); !errors.Is(err, ErrNoLimactl) {
		t.Errorf("none: %v", err)
	}
	bundled := filepath.Join(dir, "limactl")
	if err := os.WriteFile(bundled, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := FindLimactl(exe, onPath); err != nil || p != bundled {
		t.Errorf("bundled beside the binary wins: %q %v", p, err)
	}
}

// guestSSH plays the guest's side of Lima's SSH for Stage: it keeps the
// files the commands write, runs `sha256sum` on them, and records what
// crossed.
type guestSSH struct {
	files map[string][]byte
	calls []string
	fail  error
	// build is what `thesystem guest-image` prints; buildLeft how long
	// its call had before its deadline.
	build     string
	buildLeft time.Duration
}

func (g *guestSSH) Run(ctx context.Context, args ...string) ([]byte, error) {
	return g.RunInput(ctx, nil, args...)
}

func (g *guestSSH) RunInput(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	if len(args) < 4 || args[0] != "-F" || args[2] != "lima-thesystem" {
		return nil, fmt.Errorf("unexpected ssh %q", args)
	}
	cmd := strings.Join(args[3:], " ")
	g.calls = append(g.calls, cmd)
	if dst, ok := strings.CutPrefix(cmd, "sudo sha256sum "); ok {
		b, ok := g.files[dst]
		if !ok {
			return []byte("sha256sum: " + dst + ": No such file or directory\n"), errors.New("exit status 1")
		}
		return fmt.Appendf(nil, "%x  %s\n", sha256.Sum256(b), dst), nil
	}
	if dst, ok := strings.CutPrefix(cmd, "sudo test -f "); ok {
		if _, ok := g.files[dst]; !ok {
			return nil, errors.New("exit status 1")
		}
		return nil, nil
	}
	if strings.HasPrefix(cmd, "sudo "+GuestInitBinary+" guest-image ") {
		if d, ok := ctx.Deadline(); ok {
			g.buildLeft = time.Until(d)
		}
		return []byte(g.build), nil
	}
	if g.fail != nil {
		return []byte("sudo: a terminal is required\n"), g.fail
	}
	m := regexp.MustCompile(`cat > (\S+)\.new`).FindStringSubmatch(cmd)
	if m == nil {
		return nil, fmt.Errorf("unexpected command %q", cmd)
	}
	b, err := io.ReadAll(stdin)
	if err != nil {
		return nil, err
	}
	g.files[m[1]] = b
	return nil, nil
}

// TestAgentImage: the runtime's package is copied into the VM once (its
// name carries its integrity), then the guest's thesystem builds the image
// and names it; a binary is staged by content; an answer that is not an
// image's name is an error that quotes it.
func TestAgentImage(t *testing.T) {
	l, _ := fakeLima(t)
	g := &guestSSH{files: map[string][]byte{}, build: "building localhost/thesystem-agent-dev:abc from this system's packages\nlocalhost/thesystem-agent-dev:abc\n"}
	l.SSH = g
	pkg := sandbox.RuntimePackage{Name: "@anthropic-ai/claude-code-linux-x64", Version: "2.1.330", GOARCH: "amd64", Integrity: "sha512-x", Member: "package/claude"}
	tgz := filepath.Join(t.TempDir(), pkg.FileName())
	if err := os.WriteFile(tgz, []byte("TGZ"), 0o644); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	for i := range 2 {
		g.calls = nil
		ref, err := l.AgentImage(t.Context(), []sandbox.Runtime{{Command: "claude", File: tgz, Package: pkg}}, &log)
		if err != nil || ref != "localhost/thesystem-agent-dev:abc" {
			t.Fatalf("AgentImage = %q, %v (calls %q)", ref, err, g.calls)
		}
		copies := 0
		for _, c := range g.calls {
			if strings.Contains(c, "cat > ") {
				copies++
			}
		}
		if copies != 1-i {
			t.Errorf("run %d: %d copies: %q", i, copies, g.calls)
		}
		last := g.calls[len(g.calls)-1]
		if !strings.Contains(last, "--runtime claude@2.1.330="+GuestRuntimeDir+"/"+pkg.FileName()) {
			t.Errorf("build: %s", last)
		}
	}
	// Longer than a call's default: a first build under TCG takes minutes.
	if g.buildLeft < AgentImageTimeout-time.Minute || g.buildLeft <= DefaultCallTimeout {
		t.Errorf("the build's deadline: %s", g.buildLeft)
	}
	if string(g.files[GuestRuntimeDir+"/"+pkg.FileName()]) != "TGZ" || !strings.Contains(log.String(), "copying "+pkg.FileName()+" into the VM") {
		t.Errorf("in the guest: %v; log %q", g.files, log.String())
	}
	bin := filepath.Join(t.TempDir(), "vmcheck")
	if err := os.WriteFile(bin, []byte("\x7fELF"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AgentImage(t.Context(), []sandbox.Runtime{{Command: "claude", File: bin}, {Command: "codex", File: bin}}, &log); err != nil ||
		string(g.files[GuestRuntimeDir+"/vmcheck"]) != "\x7fELF" || !strings.Contains(g.calls[len(g.calls)-1], "--runtime claude="+GuestRuntimeDir+"/vmcheck --runtime codex="+GuestRuntimeDir+"/vmcheck") {
		t.Errorf("a binary: %v", err)
	}
	g.build = "thesystem: the agents' image needs packages this system does not have: ripgrep\n"
	if _, err := l.AgentImage(t.Context(), []sandbox.Runtime{{Command: "claude", File: tgz, Package: pkg}}, &log); err == nil || !strings.Contains(err.Error(), "ripgrep") {
		t.Errorf("a failed build: %v", err)
	}
}

func TestStage(t *testing.T) {
	l, _ := fakeLima(t)
	g := &guestSSH{files: map[string][]byte{}}
	l.SSH = g
	src := filepath.Join(t.TempDir(), "thesystem")
	write := func(s string) {
		if err := os.WriteFile(src, []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stage := func(want bool) {
		t.Helper()
		copied, err := l.Stage(t.Context(), src, GuestInitBinary)
		if err != nil || copied != want {
			t.Fatalf("Stage = %v, %v; want copied %v (calls %q)", copied, err, want, g.calls)
		}
	}
	write("\x7fELF one")
	stage(true) // not in the guest yet
	if string(g.files[GuestInitBinary]) != "\x7fELF one" {
		t.Fatalf("in the guest: %q", g.files[GuestInitBinary])
	}
	if last := g.calls[len(g.calls)-1]; !strings.Contains(last, "mv -f "+GuestInitBinary+".new "+GuestInitBinary) {
		t.Errorf("copy: %s", last)
	}
	g.calls = nil
	stage(false) // the same: only the checksum crossed
	if len(g.calls) != 1 {
		t.Errorf("calls for an unchanged file: %q", g.calls)
	}
	write("\x7fELF two")
	stage(true)
	if string(g.files[GuestInitBinary]) != "\x7fELF two" {
		t.Fatalf("in the guest: %q", g.files[GuestInitBinary])
	}
	write("\x7fELF three")
	g.fail = errors.New("exit status 1")
	if _, err := l.Stage(t.Context(), src, GuestInitBinary); err == nil || !strings.Contains(err.Error(), "copy thesystem into the VM") || !strings.Contains(err.Error(), "a terminal is required") {
		t.Errorf("a failed copy: %v", err)
	}
}

func TestLimactlEnv(t *testing.T) {
	in := []string{"PATH=/usr/bin", "HOME=/home/u", "QEMU_SYSTEM_X86_64=qemu-system-x86_64 -cpu max", "LC_ALL=C",
		"ANTHROPIC_API_KEY=sk-ant-api03-PLANTED", "https_proxy=http://user:pass@proxy:3128", "HTTP_PROXY=http://u:p@x",
		"THESYSTEM_NOTE=x", "LIMA_HOME=/elsewhere", "LIMA_INSTANCE=other", "SSH_AUTH_SOCK=/tmp/agent"}
	got := strings.Join(limactlEnv(in), " ")
	want := "PATH=/usr/bin HOME=/home/u QEMU_SYSTEM_X86_64=qemu-system-x86_64 -cpu max LC_ALL=C LIMA_INSTANCE=other SSH_AUTH_SOCK=/tmp/agent"
	if got != want {
		t.Errorf("limactlEnv = %q\nwant %q", got, want)
	}
}
