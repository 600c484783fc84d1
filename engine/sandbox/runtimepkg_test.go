package sandbox

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// elfHead is the start of a 64-bit little-endian ELF for machine.
func elfHead(machine uint16, osabi byte) []byte {
	b := make([]byte, 64)
	copy(b, "\x7fELF")
	b[4], b[5], b[6], b[7] = 2, 1, 1, osabi
	binary.LittleEndian.PutUint16(b[16:], 2)
	binary.LittleEndian.PutUint16(b[18:], machine)
	return b
}

// npmTarball is an npm package tarball holding files.
func npmTarball(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(body)
	}
	_ = tw.Close()
	_ = gz.Close()
	return buf.Bytes()
}

func integrity(b []byte) string {
	sum := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

// fakeRegistry serves tarballs by path on 127.0.0.1 and counts requests.
func fakeRegistry(t testing.TB, files map[string][]byte) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// TestRuntimePackageFetch: the runtime is downloaded from the registry,
// kept only when it matches the pinned integrity and holds a linux ELF for
// the wanted architecture, and reused after; every failure names what is
// wrong and leaves nothing in the cache.
func TestRuntimePackageFetch(t *testing.T) {
	amd64 := append(elfHead(62, 0), []byte("rest of the binary")...)
	good := npmTarball(t, map[string][]byte{"package/claude": amd64, "package/package.json": []byte("{}")})
	arm := npmTarball(t, map[string][]byte{"package/claude": elfHead(183, 3)})
	script := npmTarball(t, map[string][]byte{"package/claude": []byte("#!/bin/sh\necho hi\n")})
	noBin := npmTarball(t, map[string][]byte{"package/README.md": []byte("hi")})
	freebsd := npmTarball(t, map[string][]byte{"package/claude": elfHead(62, 9)})
	files := map[string][]byte{}
	pkg := func(name string, body []byte, sum string) RuntimePackage {
		p := RuntimePackage{Name: "@x/" + name, Version: "1.0.0", GOARCH: "amd64", Integrity: sum, Member: "package/claude"}
		if sum == "" {
			p.Integrity = integrity(body)
		}
		files["/@x/"+name+"/-/"+name+"-1.0.0.tgz"] = body
		return p
	}
	cases := []struct {
		name string
		p    RuntimePackage
		want string // "" for success
	}{
		{"good", pkg("good", good, ""), ""},
		{"tampered", pkg("tampered", good, integrity([]byte("other"))), "integrity"},
		{"other arch", pkg("arm", arm, ""), "an ELF binary for arm64, not amd64"},
		{"not ELF", pkg("script", script, ""), "not an ELF binary"},
		{"no binary", pkg("nobin", noBin, ""), "no package/claude in the package"},
		{"not linux", pkg("freebsd", freebsd, ""), "OS ABI 9, not linux"},
		{"not there", RuntimePackage{Name: "@x/absent", Version: "1.0.0", GOARCH: "amd64", Integrity: "sha512-x", Member: "package/claude"}, "404 Not Found"},
	}
	registry, requests := fakeRegistry(t, files)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file, err := tc.p.Fetch(t.Context(), nil, registry, dir, nil)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want it to say %q", err, tc.want)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Errorf("left in the cache: %v", ents)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			before := requests.Load()
			again, err := tc.p.Fetch(t.Context(), nil, registry, dir, nil)
			if err != nil || again != file || requests.Load() != before {
				t.Errorf("second fetch: %s %v, %d requests", again, err, requests.Load()-before)
			}
			// Changed in the cache since: downloaded anew.
			if err := os.WriteFile(file, []byte("changed"), 0o600); err != nil {
				t.Fatal(err)
			}
			if again, err := tc.p.Fetch(t.Context(), nil, registry, dir, nil); err != nil || again != file || requests.Load() != before+1 {
				t.Errorf("after a change in the cache: %s %v, %d requests", again, err, requests.Load()-before)
			}
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var got bytes.Buffer
			if err := tc.p.Open(f, func(r io.Reader, _ int64) error {
				_, err := got.ReadFrom(r)
				return err
			}); err != nil || !bytes.Equal(got.Bytes(), amd64) {
				t.Errorf("open: %v", err)
			}
		})
	}
}

// TestRuntimePackageBounded: a mirror that streams without end, or
// announces too much, is cut off at the package's bound and leaves nothing.
func TestRuntimePackageBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "announced") {
			w.Header().Set("Content-Length", "999999999")
			return
		}
		chunk := make([]byte, 64<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	for _, name := range []string{"endless", "announced"} {
		dir := t.TempDir()
		p := RuntimePackage{Name: "@x/" + name, Version: "1.0.0", GOARCH: "amd64", Integrity: "sha512-x", Member: "package/claude", MaxSize: 1 << 20}
		if _, err := p.Fetch(t.Context(), nil, srv.URL, dir, nil); err == nil || !strings.Contains(err.Error(), "a runtime may be") {
			t.Errorf("%s: %v", name, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%s: left %v", name, ents)
		}
	}
}

// TestClaudeCodePackage: claude-code's real linux package, served by a
// registry on 127.0.0.1, passes the pinned integrity and is an ELF for
// this machine; an architecture claude-code does not ship is refused.
// THESYSTEM_TEST_CLAUDE_PKG is the tarball (make runtimes: npm pack).
func TestClaudeCodePackage(t *testing.T) {
	if _, err := ClaudeCodePackage("2.1.330", "riscv64"); err == nil {
		t.Error("riscv64 accepted")
	}
	if _, err := ClaudeCodePackage("0.0.1", "amd64"); err == nil || !strings.Contains(err.Error(), "no pinned integrity") {
		t.Errorf("unknown version: %v", err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, DefaultNPMRegistry},
		{map[string]string{"npm_config_registry": "http://127.0.0.1:1/npm/"}, "http://127.0.0.1:1/npm"},
		{map[string]string{"NPM_CONFIG_REGISTRY": " https://mirror.example/ "}, "https://mirror.example"},
	} {
		if got := NPMRegistry(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("registry %v: %s, want %s", tc.env, got, tc.want)
		}
	}
	tgz := os.Getenv("THESYSTEM_TEST_CLAUDE_PKG")
	if tgz == "" {
		if os.Getenv("THESYSTEM_TEST_CLAUDE") != "" {
			t.Fatal("THESYSTEM_TEST_CLAUDE is set but THESYSTEM_TEST_CLAUDE_PKG is not (make runtimes packs it)")
		}
		t.Skip("THESYSTEM_TEST_CLAUDE_PKG not set")
	}
	b, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ClaudeCodePackage("2.1.330", runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	registry, _ := fakeRegistry(t, map[string][]byte{p.TarballURL(""): b})
	file, err := p.Fetch(t.Context(), nil, registry, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(file) != p.FileName() || !strings.HasPrefix(p.FileName(), "claude-code-linux-") || !strings.Contains(p.FileName(), "-2.1.330-") {
		t.Errorf("cached as %s", file)
	}
	other := p
	other.GOARCH = map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]
	f, _ := os.Open(file)
	defer f.Close()
	if err := other.Check(f); err == nil || !strings.Contains(err.Error(), "for "+runtime.GOARCH+", not "+other.GOARCH) {
		t.Errorf("as %s: %v", other.GOARCH, err)
	}
}
