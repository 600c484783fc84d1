package sandbox

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestGuestImage builds the agents' image the way the VM does, from the
// packages of the system it runs on (here this Debian host, as the VM's
// Debian or Ubuntu) with the real claude-code package for this machine
// (THESYSTEM_TEST_CLAUDE_PKG), and runs a shell, git, ripgrep, awk (an
// alternative) and claude in it as the agent, with the agent container's
// hardening; nothing in it is setuid. The same inputs reuse the image; a
// package the system lacks is named, or installed when it may.
func TestGuestImage(t *testing.T) {
	svc := startPodman(t)
	if _, err := ReadDpkg("/"); err != nil {
		t.Skip(err)
	}
	p, err := Connect(t.Context(), svc.socket)
	if err != nil {
		t.Fatal(err)
	}
	g := GuestImage{UID: 1000, GID: 1000, Runtimes: []Runtime{{Command: "claude", File: "/bin/true"}}}
	version := "/bin/true && echo no-claude"
	if tgz := os.Getenv("THESYSTEM_TEST_CLAUDE_PKG"); tgz != "" {
		pkg, err := ClaudeCodePackage("2.1.330", runtime.GOARCH)
		if err != nil {
			t.Fatal(err)
		}
		g.Runtimes, version = []Runtime{{Command: "claude", File: tgz, Package: pkg}}, "claude --version"
	} else if os.Getenv("THESYSTEM_TEST_CLAUDE") != "" {
		t.Fatal("THESYSTEM_TEST_CLAUDE is set but THESYSTEM_TEST_CLAUDE_PKG is not (make runtimes packs it)")
	}
	if tgz := os.Getenv("THESYSTEM_TEST_CODEX_PKG"); tgz != "" { // the second runtime beside the first
		pkg, err := CodexPackage("0.171.0", runtime.GOARCH)
		if err != nil {
			t.Fatal(err)
		}
		g.Runtimes = append(g.Runtimes, Runtime{Command: "codex", File: tgz, Package: pkg})
		version += " && codex --version"
	}
	var log bytes.Buffer
	g.Log = &log
	t0 := time.Now()
	ref, err := g.Build(t.Context(), p)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	took := time.Since(t0)
	t1 := time.Now()
	again, err := g.Build(t.Context(), p)
	if err != nil || again != ref || strings.Count(log.String(), "built ") != 1 {
		t.Fatalf("second build: %s %v\n%s", again, err, log.String())
	}
	size, _ := svc.podman(t.Context(), "image", "inspect", "--format", "{{.Size}}", ref).CombinedOutput()
	t.Logf("the agents' image %s from this system's packages: built in %s (%s bytes), found again in %s\n%s",
		ref, took.Round(100*time.Millisecond), strings.TrimSpace(string(size)), time.Since(t1).Round(time.Millisecond), log.String())

	initBin := filepath.Join(t.TempDir(), "thesystem")
	buildStatic(t, "../../app", initBin)
	_ = os.Chmod(filepath.Dir(initBin), 0o755)
	sock, _ := socketDir(t, "tsa_"+strings.Repeat("cd", 32), 1000)
	spec := AgentSpec{
		Agent: "agent-1", Stack: "test", Image: ref, InitBinary: initBin, SocketDir: sock, AgentDir: filepath.Join(sock, "agent"),
		Workspace: "thesystem-test-guest-1", User: "1000:1000", Memory: 1 << 30, CPUs: 1, Pids: 256,
		Argv: []string{"bash", "-c", `set -e; cd /workspace && git init -q w && cd w && echo hi > f && git add f &&
git -c user.name=a -c user.email=a@b commit -qm one && git log --oneline | wc -l && rg -c hi f && echo a b | awk '{print $2}' &&
id -un && test -z "$(find / -xdev -perm /6000 2>/dev/null)" && echo no-setuid &&
(touch /etc/x 2>/dev/null && echo ROOT-WRITABLE || echo root-read-only) && ` + version},
	}
	_, code, out := runToExit(t, svc, p, spec)
	if code != 0 {
		t.Fatalf("exited %d:\n%s", code, out)
	}
	want := "1\n1\nb\nagent\nno-setuid\nroot-read-only\n"
	if !strings.Contains(string(out), want) {
		t.Errorf("in the image:\n%s\nwant:\n%s", out, want)
	}
	for _, r := range g.Runtimes {
		if v := strings.TrimSuffix(r.Package.Version, "-linux-x64"); r.Package.Name != "" && !strings.Contains(string(out), strings.TrimSuffix(v, "-linux-arm64")) {
			t.Errorf("%s --version in the image:\n%s", r.Command, out)
		}
	}

	// A package the system lacks: named, or installed when it may be.
	g.Packages = []string{"bash", "thesystem-no-such-package"}
	if _, err := g.Build(t.Context(), p); err == nil || !strings.Contains(err.Error(), "thesystem-no-such-package") {
		t.Errorf("missing package: %v", err)
	}
	var asked []string
	g.Install = func(_ context.Context, pkgs []string) error { asked = pkgs; return nil }
	if _, err := g.Build(t.Context(), p); err == nil || !strings.Contains(err.Error(), "still missing") || strings.Join(asked, " ") != "thesystem-no-such-package" {
		t.Errorf("after install: %v (asked %v)", err, asked)
	}
}
