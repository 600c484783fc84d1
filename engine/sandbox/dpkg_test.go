package sandbox

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeSystem writes a root with a dpkg database: status stanzas, each
// package's file list, the files themselves.
func fakeSystem(t *testing.T, status string, lists map[string][]string, files map[string]string, links map[string]string) string {
	t.Helper()
	root := t.TempDir()
	info := filepath.Join(root, "var", "lib", "dpkg", "info")
	if err := os.MkdirAll(info, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(root, "var", "lib", "dpkg", "status"), status)
	for pkg, paths := range lists {
		write(t, filepath.Join(info, pkg+".list"), strings.Join(paths, "\n")+"\n")
	}
	for p, body := range files {
		write(t, filepath.Join(root, p), body)
	}
	for p, target := range links {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func write(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

const fakeStatus = `Package: dpkg
Status: install ok installed
Architecture: amd64
Version: 1.21

Package: tool
Status: install ok installed
Architecture: amd64
Version: 2.0-1
Depends: libfoo (>= 1.0), awk | mawk, mail-transport-agent | nullmailer
Description: a tool
 with a long description: Depends: not-a-dep

Package: libfoo
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Version: 1.2
Pre-Depends: libc6:any

Package: libfoo
Status: install ok installed
Architecture: i386
Multi-Arch: same
Version: 1.2

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Version: 2.36

Package: gawk
Status: install ok installed
Architecture: amd64
Version: 5.2
Provides: awk

Package: removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1

Package: nullmailer
Status: install ok installed
Architecture: amd64
Version: 1
`

// TestDpkgClosure: a package's closure follows Depends and Pre-Depends,
// takes the first installed alternative (a virtual one through Provides),
// the native arch of a multi-arch package, skips what is only configured,
// and names the roots that are not installed.
func TestDpkgClosure(t *testing.T) {
	root := fakeSystem(t, fakeStatus, nil, nil, nil)
	db, err := ReadDpkg(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		roots         []string
		want, missing []string
	}{
		{"deps", []string{"tool"}, []string{"gawk=5.2", "libc6:amd64=2.36", "libfoo:amd64=1.2", "nullmailer=1", "tool=2.0-1"}, nil},
		{"leaf", []string{"libc6"}, []string{"libc6:amd64=2.36"}, nil},
		{"virtual root", []string{"awk"}, []string{"gawk=5.2"}, nil},
		{"missing", []string{"removed", "nope", "libc6"}, []string{"libc6:amd64=2.36"}, []string{"removed", "nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			closure, missing := db.Closure(tc.roots)
			if got := closure.Versions(); !slices.Equal(got, tc.want) {
				t.Errorf("closure %v, want %v", got, tc.want)
			}
			if !slices.Equal(missing, tc.missing) {
				t.Errorf("missing %v, want %v", missing, tc.missing)
			}
		})
	}
	a, _ := db.Closure([]string{"tool"})
	b, _ := db.Closure([]string{"tool", "libc6"})
	c, _ := db.Closure([]string{"libc6"})
	if a.Key() != b.Key() || a.Key() == c.Key() {
		t.Error("the key is not the packages' versions")
	}
	if _, err := ReadDpkg(t.TempDir()); err == nil || !strings.Contains(err.Error(), "dpkg") {
		t.Errorf("no database: %v", err)
	}
}

// TestDpkgRootfs: the root filesystem holds the packages' files where they
// are (through a merged /usr's links), the links as links, alternatives
// whose target is in it, no documentation, no setuid bit, root's and the
// extra lines of /etc/passwd, /tmp sticky.
func TestDpkgRootfs(t *testing.T) {
	status := "Package: dpkg\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n" +
		"Package: tool\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n" +
		"Package: other\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n"
	root := fakeSystem(t, status,
		map[string][]string{
			"dpkg":  {"/."},
			"tool":  {"/.", "/bin", "/bin/tool", "/usr/bin/sutool", "/usr/share/doc/tool/README", "/usr/bin/tool-link", "/gone"},
			"other": {"/usr/bin/other"},
		},
		map[string]string{"usr/bin/tool": "TOOL", "usr/bin/sutool": "SU", "usr/share/doc/tool/README": "doc", "usr/bin/other": "OTHER",
			"var/lib/dpkg/alternatives/tl": "auto\n/usr/bin/tl\n\n/usr/bin/tool\n50\n",
			"var/lib/dpkg/alternatives/ot": "auto\n/usr/bin/ot\n\n/usr/bin/other\n50\n"},
		map[string]string{"bin": "usr/bin", "usr/bin/tool-link": "tool", "etc/alternatives/tl": "/usr/bin/tool", "usr/bin/tl": "/etc/alternatives/tl",
			"etc/alternatives/ot": "/usr/bin/other", "usr/bin/ot": "/etc/alternatives/ot"})
	if err := os.Chmod(filepath.Join(root, "usr/bin/sutool"), 0o4755); err != nil {
		t.Fatal(err)
	}
	db, err := ReadDpkg(root)
	if err != nil {
		t.Fatal(err)
	}
	closure, _ := db.Closure([]string{"tool"})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := db.WriteRootfs(closure, tw, &tarDirs{tw: tw, prefix: "./", seen: map[string]bool{}}, "agent:x:1000:1000::/workspace:/bin/bash\n", ""); err != nil {
		t.Fatal(err)
	}
	_ = tw.Close()
	got := map[string]*tar.Header{}
	body := map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if _, dup := got[h.Name]; dup {
			t.Errorf("%s twice", h.Name)
		}
		got[h.Name] = h
		b, _ := io.ReadAll(tr)
		body[h.Name] = string(b)
	}
	if h := got["./bin"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/bin" {
		t.Errorf("bin: %+v", h)
	}
	if body["./usr/bin/tool"] != "TOOL" || got["./bin/tool"] != nil {
		t.Errorf("the tool is not where it is: %v", keys(got))
	}
	if h := got["./usr/bin/sutool"]; h == nil || h.Mode != 0o755 {
		t.Errorf("setuid kept: %+v", h)
	}
	if h := got["./usr/bin/tool-link"]; h == nil || h.Linkname != "tool" {
		t.Errorf("link: %+v", h)
	}
	if h := got["./usr/bin/tl"]; h == nil || h.Linkname != "/etc/alternatives/tl" || got["./etc/alternatives/tl"] == nil {
		t.Errorf("alternative: %v", keys(got))
	}
	for _, name := range []string{"./usr/bin/ot", "./etc/alternatives/ot", "./usr/bin/other", "./usr/share/doc/tool/README", "./gone"} {
		if got[name] != nil {
			t.Errorf("%s is in the image", name)
		}
	}
	if body["./etc/passwd"] != "root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000::/workspace:/bin/bash\n" {
		t.Errorf("passwd: %q", body["./etc/passwd"])
	}
	if h := got["./tmp/"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("tmp: %+v", h)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
