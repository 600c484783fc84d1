package sandbox

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
)

// sharedLibraries lists what the dynamic loader needs to run binary,
// loader included, as ldd(1) reports it.
func sharedLibraries(ctx context.Context, binary string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ldd", binary).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("not a dynamic executable")) || bytes.Contains(out, []byte("statically linked")) {
			return nil, nil // static: nothing to add
		}
		return nil, fmt.Errorf("ldd %s: %w: %s", binary, err, bytes.TrimSpace(out))
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0]) // the loader
		}
	}
	return libs, nil
}

// RuntimeRootfs writes a root filesystem tarball for an agent runtime
// that is one dynamically linked binary (claude-code ships as one): the
// binaries as /usr/local/bin/<name> (bins: name → the binary), the
// shared libraries they need, an
// /etc/passwd naming the agent user with /workspace as home, a /tmp with
// mode 1777, and the mount points of the agent container. No registry is
// needed: podman imports the tarball.
func RuntimeRootfs(ctx context.Context, bins map[string]string, uid, gid int, w io.Writer) error {
	var libs []string
	for _, name := range slices.Sorted(maps.Keys(bins)) {
		l, err := sharedLibraries(ctx, bins[name])
		if err != nil {
			return err
		}
		for _, lib := range l {
			if !slices.Contains(libs, lib) {
				libs = append(libs, lib)
			}
		}
	}
	tw := tar.NewWriter(w)
	mkdir := (&tarDirs{tw: tw, seen: map[string]bool{}}).mkdir
	file := func(p string, mode int64, content []byte) error {
		if err := mkdir(path.Dir(p), 0o755); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: mode, Size: int64(len(content))}); err != nil {
			return err
		}
		_, err := tw.Write(content)
		return err
	}
	copyFile := func(src, dst string, mode int64) error {
		f, err := os.Open(src) // follows symlinks: the image holds the real file
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if err := mkdir(path.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: dst, Mode: mode, Size: fi.Size()}); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	}
	for _, d := range []string{"etc", "run/thesystem/sockets", "run/thesystem/services", "run/thesystem/agent", "workspace", "project", "run/thesystem/project-share", "usr/local/bin"} {
		if err := mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if err := mkdir("tmp", 0o1777); err != nil {
		return err
	}
	if err := file("thesystem", 0o755, nil); err != nil { // the init's mount point
		return err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/nonexistent\nagent:x:%d:%d:agent:/workspace:/nonexistent\n", uid, gid)
	group := fmt.Sprintf("root:x:0:\nagent:x:%d:\n", gid)
	for p, c := range map[string]string{"etc/passwd": passwd, "etc/group": group, "etc/hosts": "127.0.0.1 localhost\n::1 localhost\n",
		"etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n"} {
		if err := file(p, 0o644, []byte(c)); err != nil {
			return err
		}
	}
	for _, lib := range libs {
		if err := copyFile(lib, strings.TrimPrefix(lib, "/"), 0o755); err != nil {
			return fmt.Errorf("library %s: %w", lib, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(bins)) {
		if err := copyFile(bins[name], "usr/local/bin/"+name, 0o755); err != nil {
			return fmt.Errorf("runtime %s: %w", bins[name], err)
		}
	}
	return tw.Close()
}

// tarDirs writes each directory of a tarball once, its parents first;
// prefix starts every name ("./" in a tarball of mmdebstrap's), seen holds
// the directories already there.
type tarDirs struct {
	tw     *tar.Writer
	prefix string
	seen   map[string]bool
}

// mkdir writes p (mode) and the parents it lacks (0755).
func (d *tarDirs) mkdir(p string, mode int64) error {
	for _, dir := range parents(p) {
		if d.seen[dir] {
			continue
		}
		d.seen[dir] = true
		m := int64(0o755)
		if dir == p {
			m = mode
		}
		if err := d.tw.WriteHeader(&tar.Header{Name: d.prefix + dir + "/", Typeflag: tar.TypeDir, Mode: m}); err != nil {
			return err
		}
	}
	return nil
}

// parents lists p and its ancestors, outermost first ("a/b" → a, a/b).
func parents(p string) []string {
	var out []string
	for p != "." && p != "/" && p != "" {
		out = append([]string{p}, out...)
		p = path.Dir(p)
	}
	return out
}
