package sandbox

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDevImage builds the agents' Debian image with mmdebstrap from the
// Debian archive (no registry) and runs a shell, git and ripgrep in it
// as the agent, with the agent container's hardening: no network, a
// read-only root, every capability dropped; the workspace is writable.
// Where mmdebstrap is missing it skips, unless THESYSTEM_TEST_PODMAN=1.
func TestDevImage(t *testing.T) {
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		if os.Getenv("THESYSTEM_TEST_PODMAN") == "1" {
			t.Fatal("THESYSTEM_TEST_PODMAN=1 but mmdebstrap is not installed (make deps)")
		}
		t.Skip("mmdebstrap not installed")
	}
	svc := startPodman(t)
	p, err := Connect(t.Context(), svc.socket)
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultDevImage("/bin/true") // the runtime stand-in, as claude
	ref, err := d.Ref()
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if err := p.ImportImageFrom(ref, func(w io.Writer) error { return d.Build(t.Context(), w, &log) }); err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	initBin := filepath.Join(t.TempDir(), "thesystem")
	buildStatic(t, "../../app", initBin)
	_ = os.Chmod(filepath.Dir(initBin), 0o755)
	sock, _ := socketDir(t, "tsa_"+strings.Repeat("ab", 32), 1000)
	spec := AgentSpec{
		Agent: "agent-1", Stack: "test", Image: ref, InitBinary: initBin, SocketDir: sock, AgentDir: filepath.Join(sock, "agent"),
		Workspace: "thesystem-test-dev-1", User: "1000:1000", Memory: 512 << 20, CPUs: 1, Pids: 128,
		Argv: []string{"bash", "-c", `cd /workspace && git init -q w && cd w && echo hi > f && git add f &&
git -c user.name=a -c user.email=a@b commit -qm one && git log --oneline | wc -l && rg -c hi f && id -u &&
command -v claude && (touch /etc/x 2>/dev/null && echo ROOT-WRITABLE || echo root-read-only) &&
(getent hosts deb.debian.org >/dev/null 2>&1 && echo NETWORK || echo no-network)`},
	}
	_, code, out := runToExit(t, svc, p, spec)
	if code != 0 {
		t.Fatalf("exited %d:\n%s", code, out)
	}
	want := "1\n1\n1000\n/usr/local/bin/claude\nroot-read-only\nno-network\n"
	if !strings.HasSuffix(string(out), want) {
		t.Errorf("in the image:\n%s\nwant it to end with:\n%s", out, want)
	}
	size, _ := svc.podman(t.Context(), "image", "inspect", "--format", "{{.Size}}", ref).CombinedOutput()
	t.Logf("the agents' image %s: %s bytes", ref, strings.TrimSpace(string(size)))
}
