package sandbox

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDevImage builds the agents' image on the Debian base (built
// beforehand with mmdebstrap from the archive by `make unit`, outside the
// tests: THESYSTEM_DEBIAN_BASE) and runs a shell, git and ripgrep in it
// as the agent, with the agent container's hardening: no network, a
// read-only root, every capability dropped; the workspace is writable.
// Without a base it skips, unless THESYSTEM_TEST_PODMAN=1.
func TestDevImage(t *testing.T) {
	base := debianBase(t)
	svc := startPodman(t)
	p, err := Connect(t.Context(), svc.socket)
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultDevImage(Runtime{Command: "claude", File: "/bin/true"}) // the runtime stand-in, as claude
	d.Base = base
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

// debianBase is the prebuilt Debian base the tests use (no test reaches
// the Debian archive), or a skip.
func debianBase(t *testing.T) string {
	t.Helper()
	base := os.Getenv("THESYSTEM_DEBIAN_BASE")
	if base == "" {
		if os.Getenv("THESYSTEM_TEST_PODMAN") == "1" {
			t.Fatal("THESYSTEM_TEST_PODMAN=1 but THESYSTEM_DEBIAN_BASE is not set (make unit builds it: go run ./packaging/debianbase)")
		}
		t.Skip("THESYSTEM_DEBIAN_BASE not set (go run ./packaging/debianbase builds it)")
	}
	return base
}

// TestDevImageLayers: the image is the base as it is, with the agent in
// /etc/passwd and /etc/group (appended), the mount points and the runtime
// added; a missing base is an error that names it; with no base given the
// cached one is used.
func TestDevImageLayers(t *testing.T) {
	dir := t.TempDir()
	var base bytes.Buffer
	tw := tar.NewWriter(&base)
	for name, body := range map[string]string{"./etc/passwd": "root:x:0:0:root:/root:/bin/bash", "./etc/group": "root:x:0:\n", "./usr/bin/git": "GIT"} {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))})
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.WriteHeader(&tar.Header{Name: "./run/", Typeflag: tar.TypeDir, Mode: 0o755})
	_ = tw.Close()
	runtime := filepath.Join(dir, "claude-bin")
	if err := os.WriteFile(runtime, []byte("RUNTIME"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := DefaultDevImage(Runtime{Command: "claude", File: runtime}, Runtime{Command: "codex", File: runtime})
	d.CacheDir = filepath.Join(dir, "cache")
	if err := os.MkdirAll(d.CacheDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.BaseFile(d.CacheDir), base.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := d.Build(t.Context(), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	dirs := 0
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(tr)
		got[h.Name] = string(b)
		if h.Typeflag == tar.TypeDir && (h.Name == "./run/" || h.Name == "./run/thesystem/") {
			dirs++
		}
	}
	for name, want := range map[string]string{
		"./etc/passwd":           "root:x:0:0:root:/root:/bin/bash\nagent:x:1000:1000:agent:/workspace:/bin/bash\n",
		"./etc/group":            "root:x:0:\nagent:x:1000:\n",
		"./usr/bin/git":          "GIT",
		"./usr/local/bin/claude": "RUNTIME",
		"./usr/local/bin/codex":  "RUNTIME",
		"./workspace/":           "",
		"./project/":             "",
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s: %q (there: %v), want %q", name, v, ok, want)
		}
	}
	if dirs != 2 {
		t.Errorf("./run/ and ./run/thesystem/ once each: %d", dirs)
	}
	d.Base = filepath.Join(dir, "missing.tar")
	if err := d.Build(t.Context(), io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "missing.tar") {
		t.Errorf("a missing base: %v", err)
	}
}

// BenchmarkAgentImage: the agents' image built on the cached Debian base
// (the layering and podman's import: what a new claude-code costs) beside
// the minimal image of the runtime's own files, in the same podman; their
// sizes. The base itself is built once by mmdebstrap (packaging/debianbase
// prints how long it took).
func BenchmarkAgentImage(b *testing.B) {
	base := os.Getenv("THESYSTEM_DEBIAN_BASE")
	claude := os.Getenv("THESYSTEM_TEST_CLAUDE")
	if base == "" || claude == "" {
		b.Skip("THESYSTEM_DEBIAN_BASE and THESYSTEM_TEST_CLAUDE are needed (make bench)")
	}
	svc := startPodman(b)
	p, err := Connect(b.Context(), svc.socket)
	if err != nil {
		b.Fatal(err)
	}
	d := DefaultDevImage(Runtime{Command: "claude", File: claude})
	d.Base = base
	size := func(ref string) float64 {
		out, err := svc.podman(b.Context(), "image", "inspect", "--format", "{{.Size}}", ref).Output()
		if err != nil {
			b.Fatalf("inspect %s: %v", ref, err)
		}
		var n float64
		_, _ = fmt.Sscan(strings.TrimSpace(string(out)), &n)
		return n / (1 << 20)
	}
	var dev, minimal time.Duration
	var devRef, minRef string
	for i := 0; b.Loop(); i++ {
		devRef, minRef = fmt.Sprintf("localhost/bench-dev:%d", i), fmt.Sprintf("localhost/bench-min:%d", i)
		t0 := time.Now()
		if err := p.ImportImageFrom(devRef, func(w io.Writer) error { return d.Build(b.Context(), w, io.Discard) }); err != nil {
			b.Fatal(err)
		}
		dev += time.Since(t0)
		t0 = time.Now()
		if err := p.ImportImageFrom(minRef, func(w io.Writer) error {
			return RuntimeRootfs(b.Context(), map[string]string{"claude": claude}, 1000, 1000, w)
		}); err != nil {
			b.Fatal(err)
		}
		minimal += time.Since(t0)
	}
	n := float64(b.N)
	b.ReportMetric(dev.Seconds()/n, "dev-image-build-s")
	b.ReportMetric(minimal.Seconds()/n, "minimal-image-build-s")
	b.ReportMetric(float64(dev)/float64(minimal), "build-ratio")
	b.ReportMetric(size(devRef), "dev-image-MiB")
	b.ReportMetric(size(minRef), "minimal-image-MiB")
}
