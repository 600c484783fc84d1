package sandbox

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// GuestBasePackages are what the agents' image holds besides
// DevPackages when it is made of the VM's own packages: the files every
// Debian system has (/etc/os-release, /bin/sh, the terminal database).
func GuestBasePackages() []string {
	return []string{"base-files", "dash", "debianutils", "ncurses-base"}
}

// GuestImage builds the agents' image on the machine it runs on, the VM
// (vm.driver lima): its userland is the VM's own installed packages
// (DevPackages and what they depend on, as dpkg has them), the runtime
// is a linux package or binary staged into the VM. Nothing comes from the
// host, which may be a Mac.
type GuestImage struct {
	// Runtimes are the runtimes, staged into this system: npm package
	// tarballs or linux binaries, each on the image's PATH as its command.
	Runtimes []Runtime
	UID, GID int
	// Packages are the image's packages (nil: GuestBasePackages and
	// DevPackages).
	Packages []string
	// Install installs missing packages (apt-get); nil reports them.
	Install func(ctx context.Context, pkgs []string) error
	// Root is the system whose packages are read ("/").
	Root string
	Log  io.Writer
}

// DevRepo is the agents' development image's name; its tag "latest" is
// the one built last.
const DevRepo = "localhost/thesystem-agent-dev"

func (g GuestImage) logf(format string, a ...any) {
	if g.Log != nil {
		fmt.Fprintf(g.Log, format+"\n", a...)
	}
}

// Build makes sure the image exists in p (named after its packages'
// versions and the runtime, so the same inputs reuse it) and tags it
// DevRepo:latest; it returns its name.
func (g GuestImage) Build(ctx context.Context, p *Podman) (string, error) {
	root := g.Root
	if root == "" {
		root = "/"
	}
	pkgs := g.Packages
	if pkgs == nil {
		pkgs = append(GuestBasePackages(), DevPackages()...)
	}
	db, err := ReadDpkg(root)
	if err != nil {
		return "", err
	}
	closure, missing := db.Closure(pkgs)
	if len(missing) > 0 {
		if g.Install == nil {
			return "", fmt.Errorf("the agents' image needs packages this system does not have: %s (apt-get install them)", strings.Join(missing, " "))
		}
		g.logf("installing %s", strings.Join(missing, " "))
		if err := g.Install(ctx, missing); err != nil {
			return "", fmt.Errorf("install %s for the agents' image: %w", strings.Join(missing, " "), err)
		}
		if db, err = ReadDpkg(root); err != nil {
			return "", err
		}
		if closure, missing = db.Closure(pkgs); len(missing) > 0 {
			return "", fmt.Errorf("the agents' image needs packages still missing after apt-get install: %s", strings.Join(missing, " "))
		}
	}
	rt, err := runtimesID(g.Runtimes, runtime.GOARCH)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "guest-image/2\n%s\n%s\n%d:%d\n", closure.Key(), rt, g.UID, g.GID)
	ref := DevRepo + ":" + hex.EncodeToString(h.Sum(nil))[:12]
	if ok, err := p.ImageExists(ref); err != nil {
		return "", err
	} else if ok {
		return ref, p.TagImage(ref, DevRepo, "latest")
	}
	g.logf("building %s from this system's packages: %d of them (%s …), and %s", ref, len(closure), strings.Join(pkgs, " "), strings.ReplaceAll(rt, "\n", ", "))
	t0 := time.Now()
	if err := p.ImportImageFrom(ref, func(w io.Writer) error { return g.write(closure, db, w) }); err != nil {
		return "", err
	}
	g.logf("built %s in %s", ref, time.Since(t0).Round(100*time.Millisecond))
	return ref, p.TagImage(ref, DevRepo, "latest")
}

// write writes the image's root filesystem: the packages' files, the
// agent user, the mount points, the runtime.
func (g GuestImage) write(closure Packages, db *Dpkg, w io.Writer) error {
	tw := tar.NewWriter(w)
	dirs := &tarDirs{tw: tw, prefix: "./", seen: map[string]bool{}}
	passwd, group := agentUser(g.UID, g.GID)
	if err := db.WriteRootfs(closure, tw, dirs, passwd, group); err != nil {
		return err
	}
	// Each package is checked again here, where it runs: a linux binary
	// for this machine.
	if err := agentLayer(tw, dirs, g.Runtimes, runtime.GOARCH); err != nil {
		return err
	}
	return tw.Close()
}

// AptInstall installs packages with apt-get (non-interactive, without
// recommends), its output to log.
func AptInstall(log io.Writer) func(ctx context.Context, pkgs []string) error {
	return func(ctx context.Context, pkgs []string) error {
		for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq", "--no-install-recommends"}, pkgs...)} {
			cmd := exec.CommandContext(ctx, "apt-get", args...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			cmd.Stdout, cmd.Stderr = log, log
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("apt-get %s: %w", args[0], err)
			}
		}
		return nil
	}
}
