package sandbox

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Dpkg is the system's own package database (Debian, Ubuntu): what is
// installed, at which version, with which files. It builds the agents'
// image inside the VM from the VM's own packages, so nothing of a host
// (which may be a Mac) goes into it.
type Dpkg struct {
	// root is the filesystem the database describes ("/").
	root   string
	native string                  // dpkg's own architecture
	pkgs   map[string][]*dpkgEntry // installed, by name (one per arch)
	// provides maps a virtual package to the installed packages that
	// provide it.
	provides map[string][]*dpkgEntry
}

type dpkgEntry struct {
	name, arch, version, multiArch string
	depends                        []string // Pre-Depends and Depends, as written
}

// ID is the package as dpkg names it on this system: name, or name:arch
// for a Multi-Arch: same package.
func (e *dpkgEntry) id() string {
	if e.multiArch == "same" {
		return e.name + ":" + e.arch
	}
	return e.name
}

// ReadDpkg reads the database of the system at root (dpkg's status file).
func ReadDpkg(root string) (*Dpkg, error) {
	status := filepath.Join(root, "var", "lib", "dpkg", "status")
	f, err := os.Open(status)
	if err != nil {
		return nil, fmt.Errorf("this system's packages (dpkg): %w", err)
	}
	defer func() { _ = f.Close() }()
	d := &Dpkg{root: root, pkgs: map[string][]*dpkgEntry{}, provides: map[string][]*dpkgEntry{}}
	var (
		fields = map[string]string{}
		last   string
	)
	flush := func() {
		if strings.HasSuffix(fields["Status"], " installed") && fields["Package"] != "" {
			e := &dpkgEntry{name: fields["Package"], arch: fields["Architecture"], version: fields["Version"], multiArch: fields["Multi-Arch"]}
			for _, k := range []string{"Pre-Depends", "Depends"} {
				for _, dep := range strings.Split(fields[k], ",") {
					if dep = strings.TrimSpace(dep); dep != "" {
						e.depends = append(e.depends, dep)
					}
				}
			}
			d.pkgs[e.name] = append(d.pkgs[e.name], e)
			for _, p := range strings.Split(fields["Provides"], ",") {
				if p = depName(p); p != "" {
					d.provides[p] = append(d.provides[p], e)
				}
			}
			if e.name == "dpkg" {
				d.native = e.arch
			}
		}
		fields, last = map[string]string{}, ""
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				fields[last] += "\n" + line
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = k
			fields[k] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", status, err)
	}
	flush()
	if len(d.pkgs) == 0 {
		return nil, fmt.Errorf("%s: no installed packages", status)
	}
	return d, nil
}

// depName is a dependency's package name, without version, arch
// qualifier or spaces ("libc6:any (>= 2.34)" → "libc6").
func depName(dep string) string {
	dep = strings.TrimSpace(dep)
	if i := strings.IndexAny(dep, " ([<"); i >= 0 {
		dep = dep[:i]
	}
	name, _, _ := strings.Cut(dep, ":")
	return name
}

// find is the installed package name (native or arch all first), or a
// package that provides it.
func (d *Dpkg) find(name string) *dpkgEntry {
	pick := func(es []*dpkgEntry) *dpkgEntry {
		for _, e := range es {
			if e.arch == d.native || e.arch == "all" {
				return e
			}
		}
		if len(es) > 0 {
			return es[0]
		}
		return nil
	}
	if e := pick(d.pkgs[name]); e != nil {
		return e
	}
	return pick(d.provides[name])
}

// Closure is roots and every package they depend on, as installed
// (sorted by name); missing names the roots that are not installed.
// Of a dependency's alternatives ("a | b") the first installed one is
// taken.
func (d *Dpkg) Closure(roots []string) (closure Packages, missing []string) {
	seen := map[*dpkgEntry]bool{}
	var visit func(e *dpkgEntry)
	visit = func(e *dpkgEntry) {
		if seen[e] {
			return
		}
		seen[e] = true
		closure = append(closure, e)
		for _, dep := range e.depends {
			for _, alt := range strings.Split(dep, "|") {
				if a := d.find(depName(alt)); a != nil {
					visit(a)
					break
				}
			}
		}
	}
	for _, r := range roots {
		e := d.find(r)
		if e == nil {
			missing = append(missing, r)
			continue
		}
		visit(e)
	}
	sort.Slice(closure, func(i, j int) bool { return closure[i].id() < closure[j].id() })
	return closure, missing
}

// Packages are installed packages, sorted by name.
type Packages []*dpkgEntry

// Key names the packages after their exact versions: the same packages
// make the same key.
func (ps Packages) Key() string {
	h := sha256.New()
	for _, e := range ps {
		fmt.Fprintf(h, "%s:%s=%s\n", e.name, e.arch, e.version)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Versions lists them as name=version (for the log).
func (ps Packages) Versions() []string {
	out := make([]string, 0, len(ps))
	for _, e := range ps {
		out = append(out, e.id()+"="+e.version)
	}
	return out
}

// skipped are the paths of packages' files an agent has no use for.
func skipped(p string) bool {
	for _, pre := range []string{"/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/share/locale/", "/usr/share/lintian/", "/usr/share/bug/"} {
		if strings.HasPrefix(p+"/", pre) {
			return true
		}
	}
	return false
}

// WriteRootfs writes the closure's files, as they are on this system, to
// tw as a root filesystem: each package's files from dpkg's lists, the
// top-level links of a merged /usr, the alternatives the files need
// (awk → gawk), the generated files programs read (the loader's cache, CA
// certificates), a root-only /etc/passwd and /etc/group, and /tmp. No
// documentation, and no setuid or setgid bits. passwd and group are
// lines added to root's. dirs is the writer's directory set (for the
// layer that follows).
func (d *Dpkg) WriteRootfs(closure Packages, tw *tar.Writer, dirs *tarDirs, passwd, group string) error {
	w := &rootfsWriter{root: d.root, tw: tw, dirs: dirs, files: map[string]bool{}}
	// The merged-/usr links first: the files are written where they are.
	for _, top := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		if err := w.add("/" + top); err != nil {
			return err
		}
	}
	for _, e := range closure {
		list := filepath.Join(d.root, "var", "lib", "dpkg", "info", e.id()+".list")
		b, err := os.ReadFile(list)
		if errors.Is(err, fs.ErrNotExist) && e.id() != e.name+":"+e.arch {
			b, err = os.ReadFile(filepath.Join(d.root, "var", "lib", "dpkg", "info", e.name+":"+e.arch+".list"))
		}
		if err != nil {
			return fmt.Errorf("files of %s: %w", e.id(), err)
		}
		for _, p := range strings.Split(string(b), "\n") {
			if p == "" || p == "/." || skipped(p) {
				continue
			}
			if err := w.add(p); err != nil {
				return fmt.Errorf("%s (of %s): %w", p, e.id(), err)
			}
		}
	}
	if err := w.alternatives(filepath.Join(d.root, "var", "lib", "dpkg", "alternatives")); err != nil {
		return err
	}
	generated := []string{"/etc/ld.so.cache", "/etc/ld.so.conf"}
	if ents, err := os.ReadDir(filepath.Join(d.root, "etc", "ssl", "certs")); err == nil && dirs.seen["etc/ssl/certs"] {
		for _, e := range ents {
			generated = append(generated, "/etc/ssl/certs/"+e.Name())
		}
	}
	for _, p := range generated {
		if err := w.add(p); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, content string }{
		{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\n" + passwd},
		{"etc/group", "root:x:0:\n" + group},
		{"etc/nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"},
	} {
		if err := dirs.mkdir(path.Dir(f.name), 0o755); err != nil {
			return err
		}
		w.files[f.name] = true
		if err := tw.WriteHeader(&tar.Header{Name: dirs.prefix + f.name, Mode: 0o644, Size: int64(len(f.content))}); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, f.content); err != nil {
			return err
		}
	}
	for _, dir := range []struct {
		name string
		mode int64
	}{{"tmp", 0o1777}, {"var/tmp", 0o1777}, {"root", 0o700}, {"dev", 0o755}, {"proc", 0o755}, {"sys", 0o755}, {"run", 0o755}} {
		if err := dirs.mkdir(dir.name, dir.mode); err != nil {
			return err
		}
	}
	return nil
}

// rootfsWriter writes the files of this system under their real paths
// (a path through a directory link, /bin/bash with /bin → usr/bin, is
// written where it is, usr/bin/bash), each once.
type rootfsWriter struct {
	root  string
	tw    *tar.Writer
	dirs  *tarDirs
	files map[string]bool // written, by name in the tarball
}

// add writes p (absolute, as dpkg lists it) if it exists: a directory, a
// file, or a link as it is.
func (w *rootfsWriter) add(p string) error {
	dir, err := filepath.EvalSymlinks(filepath.Join(w.root, path.Dir(p)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a path the package no longer has (diverted, removed)
	}
	if err != nil {
		return err
	}
	real := filepath.Join(dir, path.Base(p))
	rel, err := filepath.Rel(w.root, real)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return nil
	}
	name := filepath.ToSlash(rel)
	if w.files[name] || w.dirs.seen[name] {
		return nil
	}
	fi, err := os.Lstat(real)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := w.dirs.mkdir(path.Dir(name), 0o755); err != nil {
		return err
	}
	switch {
	case fi.IsDir():
		return w.dirs.mkdir(name, int64(fi.Mode().Perm())|stickyBit(fi.Mode()))
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(real)
		if err != nil {
			return err
		}
		w.files[name] = true
		w.dirs.seen[name] = true // nothing is written under a link
		return w.tw.WriteHeader(&tar.Header{Name: w.dirs.prefix + name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777})
	case fi.Mode().IsRegular():
		f, err := os.Open(real)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		w.files[name] = true
		// No setuid or setgid: nothing in an agent's container may gain
		// privileges.
		if err := w.tw.WriteHeader(&tar.Header{Name: w.dirs.prefix + name, Mode: int64(fi.Mode().Perm()), Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
		if _, err := io.CopyN(w.tw, f, fi.Size()); err != nil {
			return fmt.Errorf("%s: %w", real, err)
		}
		return nil
	}
	return nil // devices, sockets, fifos: none belong in an image
}

func stickyBit(m fs.FileMode) int64 {
	if m&fs.ModeSticky != 0 {
		return 0o1000
	}
	return 0
}

// alternatives writes the links update-alternatives made (/usr/bin/awk →
// /etc/alternatives/awk → /usr/bin/gawk) whose target is in the image.
func (w *rootfsWriter) alternatives(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
		if err != nil {
			return err
		}
		lines := strings.Split(string(b), "\n")
		if len(lines) < 2 {
			continue
		}
		// Mode, the master link, then pairs of a slave's name and link
		// until an empty line.
		names, links := []string{ent.Name()}, []string{lines[1]}
		for i := 2; i+1 < len(lines) && lines[i] != ""; i += 2 {
			names, links = append(names, lines[i]), append(links, lines[i+1])
		}
		for i, name := range names {
			link := links[i]
			target, err := os.Readlink(filepath.Join(w.root, "etc", "alternatives", name))
			if err != nil {
				continue
			}
			real, err := filepath.EvalSymlinks(filepath.Join(w.root, target))
			if err != nil {
				continue
			}
			rel, err := filepath.Rel(w.root, real)
			if err != nil || !w.files[filepath.ToSlash(rel)] {
				continue // not in the image
			}
			if err := w.add("/etc/alternatives/" + name); err != nil {
				return err
			}
			if err := w.add(link); err != nil {
				return err
			}
		}
	}
	return nil
}
