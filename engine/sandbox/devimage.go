package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
// Suite from Mirror with DevPackages, the runtime binary on top.
type DevImage struct {
	Suite, Mirror string
	// Runtime is the agent runtime's binary on the host, Name its name on
	// the image's PATH (/usr/local/bin).
	Runtime, Name string
	UID, GID      int
}

// DefaultDevImage is Debian 12 from the Debian archive.
func DefaultDevImage(runtime string) DevImage {
	return DevImage{Suite: "bookworm", Mirror: "http://deb.debian.org/debian", Runtime: runtime, Name: "claude", UID: 1000, GID: 1000}
}

// Ref names the image after what goes into it (the suite, the packages,
// the runtime's content): the same inputs reuse it, a new runtime or
// package list builds a new one. The archive's own updates do not: `thesystem
// reinstall` rebuilds.
func (d DevImage) Ref() (string, error) {
	f, err := os.Open(d.Runtime)
	if err != nil {
		return "", fmt.Errorf("agent image: %w", err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%d:%d\n%s\n", d.Suite, strings.Join(DevPackages(), ","), d.UID, d.GID, d.Name)
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "localhost/thesystem-agent-dev:" + hex.EncodeToString(h.Sum(nil))[:12], nil
}

// Build writes the image's root filesystem as a tarball to w: a minimal
// Debian with DevPackages made by mmdebstrap from the archive (no
// registry), the agent user (home /workspace), the agent container's
// mount points, and the runtime at /usr/local/bin/<Name>. Progress and
// errors go to log.
func (d DevImage) Build(ctx context.Context, w, log io.Writer) error {
	mmdebstrap, err := exec.LookPath("mmdebstrap")
	if err != nil {
		return fmt.Errorf("the agents' image is built with mmdebstrap from the Debian archive: install it (Debian: apt-get install mmdebstrap): %w", err)
	}
	runtime, err := filepath.EvalSymlinks(d.Runtime)
	if err != nil {
		return fmt.Errorf("agent image: %w", err)
	}
	mode := "root"
	if os.Geteuid() != 0 {
		mode = "unshare" // a user namespace of the user's subordinate ids
	}
	user := strconv.Itoa(d.UID)
	mounts := []string{guest.SocketDir, guest.ServiceDir, guest.AgentDir, guest.OwnDir, guest.IdentityDir, guest.WorkspaceDir, guest.ProjectPath}
	args := []string{
		"--quiet", "--variant=minbase", "--mode=" + mode, "--format=tar",
		"--include=" + strings.Join(DevPackages(), ","),
		// No documentation, no caches: a smaller image.
		"--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/locale/*",
		"--customize-hook=chroot \"$1\" groupadd -g " + strconv.Itoa(d.GID) + " agent && chroot \"$1\" useradd -u " + user +
			" -g " + strconv.Itoa(d.GID) + " -d " + guest.WorkspaceDir + " -M -s /bin/bash agent",
		"--customize-hook=mkdir -p \"$1\"" + strings.Join(mounts, " \"$1\"") + " && touch \"$1\"" + guest.InitPath,
		"--customize-hook=copy-in " + runtime + " /usr/local/bin",
		"--customize-hook=chmod 0755 \"$1\"/usr/local/bin/" + filepath.Base(runtime),
		"--customize-hook=rm -rf \"$1\"/var/cache/apt/archives/*.deb \"$1\"/var/lib/apt/lists/*",
	}
	if b := filepath.Base(runtime); b != d.Name {
		args = append(args, "--customize-hook=mv \"$1\"/usr/local/bin/"+b+" \"$1\"/usr/local/bin/"+d.Name)
	}
	args = append(args, d.Suite, "-", d.Mirror)
	cmd := exec.CommandContext(ctx, mmdebstrap, args...)
	cmd.Stdout, cmd.Stderr = w, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mmdebstrap (the agents' Debian image, from %s): %w", d.Mirror, err)
	}
	return nil
}
