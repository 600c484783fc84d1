package sandbox

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"github.com/thesystem-dev/thesystem/engine/guest"
)

// DevPackages are the agents' development userland: enough to read, edit,
// search, diff, patch, build and commit a project, and nothing that
// reaches a network on its own (there is none in the container).
func DevPackages() []string {
	return []string{"bash", "coreutils", "findutils", "grep", "ripgrep", "sed", "gawk", "git", "diffutils", "patch",
		"less", "make", "ca-certificates", "procps", "file", "tar", "gzip", "xz-utils", "unzip", "jq"}
}

// DevImage says how the agents' development image is built: Debian's
// Suite from Mirror with DevPackages (the base, made once by mmdebstrap
// and cached), the agent user and the runtimes layered on it.
type DevImage struct {
	Suite, Mirror string
	// Runtimes are the agent runtimes on the host (packages or binaries),
	// each put on the image's PATH (/usr/local/bin) as its command.
	Runtimes []Runtime
	UID, GID int
	// Base is a Debian base root filesystem (a tarball, BuildBase's) to
	// use instead of building one: made elsewhere for a machine without
	// the archive, or beforehand. "" builds it into CacheDir the first
	// time and reuses it.
	Base     string
	CacheDir string
}

// DefaultDevImage is Debian 12 from the Debian archive.
func DefaultDevImage(runtimes ...Runtime) DevImage {
	return DevImage{Suite: "bookworm", Mirror: "http://deb.debian.org/debian", Runtimes: runtimes, UID: 1000, GID: 1000}
}

// baseKey names the base after what goes into it.
func (d DevImage) baseKey() string {
	h := sha256.Sum256([]byte(d.Suite + "\n" + strings.Join(DevPackages(), ",")))
	return hex.EncodeToString(h[:])[:12]
}

// BaseFile is where the base is cached in dir.
func (d DevImage) BaseFile(dir string) string {
	return filepath.Join(dir, "debian-"+d.Suite+"-"+d.baseKey()+".tar")
}

// Ref names the image after what goes into it (the suite, the packages,
// the runtimes): the same inputs reuse it, a new runtime or package list
// builds a new one. The archive's own updates do not: `thesystem
// reinstall` rebuilds.
func (d DevImage) Ref() (string, error) {
	rt, err := runtimesID(d.Runtimes, goruntime.GOARCH)
	if err != nil {
		return "", fmt.Errorf("agent image: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "dev-image/2\n%s\n%s\n%d:%d\n%s\n", d.Suite, strings.Join(DevPackages(), ","), d.UID, d.GID, rt)
	return DevRepo + ":" + hex.EncodeToString(h.Sum(nil))[:12], nil
}

// BuildBase writes the base root filesystem as a tarball to w: a minimal
// Debian with DevPackages made by mmdebstrap from the archive (no
// registry), without documentation or apt's caches. Progress and errors go
// to log.
func (d DevImage) BuildBase(ctx context.Context, w, log io.Writer) error {
	mmdebstrap, err := exec.LookPath("mmdebstrap")
	if err != nil {
		return fmt.Errorf("the agents' image is built with mmdebstrap from the Debian archive: install it (Debian: apt-get install mmdebstrap): %w", err)
	}
	mode := "root"
	if os.Geteuid() != 0 {
		mode = "unshare" // a user namespace of the user's subordinate ids
	}
	args := []string{
		"--quiet", "--variant=minbase", "--mode=" + mode, "--format=tar",
		"--include=" + strings.Join(DevPackages(), ","),
		// No documentation, no caches: a smaller image.
		"--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/locale/*",
		"--customize-hook=rm -rf \"$1\"/var/cache/apt/archives/*.deb \"$1\"/var/lib/apt/lists/*",
		d.Suite, "-", d.Mirror,
	}
	cmd := exec.CommandContext(ctx, mmdebstrap, args...)
	cmd.Stdout, cmd.Stderr = w, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mmdebstrap (the agents' Debian base, from %s): %w", d.Mirror, err)
	}
	return nil
}

// EnsureBase is the base tarball's path: Base, or the cached one, built the
// first time (into a temporary file renamed into place: an interrupted
// build leaves nothing that looks done).
func (d DevImage) EnsureBase(ctx context.Context, log io.Writer) (string, error) {
	if d.Base != "" {
		if _, err := os.Stat(d.Base); err != nil {
			return "", fmt.Errorf("the agents' Debian base: %w", err)
		}
		return d.Base, nil
	}
	if d.CacheDir == "" {
		return "", errors.New("the agents' Debian base: no cache dir")
	}
	file := d.BaseFile(d.CacheDir)
	if _, err := os.Stat(file); err == nil {
		return file, nil
	}
	if err := os.MkdirAll(d.CacheDir, 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(d.CacheDir, ".debian-*.tar")
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close(); _ = os.Remove(f.Name()) }()
	if err := d.BuildBase(ctx, f, log); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return file, os.Rename(f.Name(), file)
}

// Build writes the image's root filesystem as a tarball to w: the Debian
// base (built once, see EnsureBase), with the agent user (home /workspace) in
// /etc/passwd and /etc/group, the agent container's mount points, and the
// runtimes at /usr/local/bin/<command>. Only the base needs the archive:
// a new runtime is layered on the cached base without a network.
func (d DevImage) Build(ctx context.Context, w, log io.Writer) error {
	basePath, err := d.EnsureBase(ctx, log)
	if err != nil {
		return err
	}
	bf, err := os.Open(basePath)
	if err != nil {
		return err
	}
	defer func() { _ = bf.Close() }()
	tr, tw := tar.NewReader(bf), tar.NewWriter(w)
	seen := map[string]bool{}
	passwd, group := agentUser(d.UID, d.GID)
	user := map[string]string{"etc/passwd": passwd, "etc/group": group}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("the agents' Debian base %s: %w", basePath, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		seen[name] = true
		if line, ok := user[name]; ok && h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
			if err != nil {
				return err
			}
			if len(b) > 0 && b[len(b)-1] != '\n' {
				b = append(b, '\n')
			}
			b = append(b, line...)
			h.Size = int64(len(b))
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := tw.Write(b); err != nil {
				return err
			}
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	dirs := &tarDirs{tw: tw, prefix: "./", seen: seen}
	if err := agentLayer(tw, dirs, d.Runtimes, goruntime.GOARCH); err != nil {
		return err
	}
	return tw.Close()
}

// agentUser is the agent user's lines of /etc/passwd and /etc/group (home
// the workspace).
func agentUser(uid, gid int) (passwd, group string) {
	return fmt.Sprintf("agent:x:%d:%d:agent:%s:/bin/bash\n", uid, gid, guest.WorkspaceDir), fmt.Sprintf("agent:x:%d:\n", gid)
}

// agentLayer writes what the agents' image adds to its base: the agent
// container's mount points, the init's, and each runtime's binary (for
// goarch) at /usr/local/bin/<command>.
func agentLayer(tw *tar.Writer, dirs *tarDirs, runtimes []Runtime, goarch string) error {
	mkdir := func(p string) error { return dirs.mkdir(strings.TrimPrefix(p, "/"), 0o755) }
	for _, m := range []string{guest.SocketDir, guest.ServiceDir, guest.AgentDir, guest.OwnDir, guest.IdentityDir, guest.WorkspaceDir, guest.ProjectPath, guest.ProjectShareDir, "/usr/local/bin", path.Dir(guest.InitPath)} {
		if err := mkdir(m); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: dirs.prefix + strings.TrimPrefix(guest.InitPath, "/"), Mode: 0o755}); err != nil {
		return err
	}
	for _, r := range runtimes {
		err := r.open(goarch, func(rd io.Reader, size int64) error {
			if err := tw.WriteHeader(&tar.Header{Name: dirs.prefix + "usr/local/bin/" + r.Command, Mode: 0o755, Size: size}); err != nil {
				return err
			}
			_, err := io.CopyN(tw, rd, size)
			return err
		})
		if err != nil {
			return fmt.Errorf("runtime %s: %w", r.Command, err)
		}
	}
	return nil
}
