package component

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
	"github.com/thesystem-dev/thesystem/engine/supervise"
)

// ClaudeCodeVersion is the claude-code release the swarm installs.
const ClaudeCodeVersion = "2.1.330"

// Swarm owns the agent image: it makes sure it exists (building it the
// first time) and says which it is while it runs; the agents depend on it.
type Swarm struct {
	Env
	// RuntimeBinary overrides the runtime (tests); "" installs claude-code.
	RuntimeBinary string
	// DebianBase is a prebuilt base for the agents' image; "" builds one
	// into the state dir's image cache the first time.
	DebianBase string
	// Build makes sure the image exists and names it (nil: the real
	// build, in the tier's podman); tests substitute one.
	Build func(ctx context.Context) (string, error)
	// Guest builds the image inside the VM from the VM's own packages
	// (vm.driver lima); nil builds it on the host (vm.driver none).
	Guest GuestImages
	// Foreign treats the host as not Linux, as a Mac is
	// (THESYSTEM_FOREIGN_HOST=1, how the Mac's path is tested on Linux):
	// every step that would use the host's own Linux (its ldd, its
	// libraries, mmdebstrap, a runtime binary of the host's) is refused.
	Foreign bool
	// Registry is the npm registry the runtime comes from ("" for
	// sandbox.DefaultNPMRegistry).
	Registry string

	ref atomic.Pointer[string]
}

// GuestImages builds the agents' image inside the VM: the runtime (a
// host file: claude-code's linux package for the guest, or a binary) is
// copied in, the VM's own packages make the rest.
type GuestImages interface {
	AgentImage(ctx context.Context, runtime string, pkg sandbox.RuntimePackage, log io.Writer) (string, error)
}

// errForeign is what a host-side Linux step says on a foreign host.
func errForeign(step string) error {
	return supervise.Permanent(fmt.Errorf("%s needs the host's own Linux, and this host is not Linux (or THESYSTEM_FOREIGN_HOST=1 says to treat it so): "+
		"with vm.driver lima the agents' image is built inside the VM", step))
}

// Image is the agent image while this run of the swarm has it ready.
func (s *Swarm) Image() (string, bool) {
	if r := s.ref.Load(); r != nil {
		return *r, true
	}
	return "", false
}

// Spec is the swarm's component: ready once the image is.
func (s *Swarm) Spec() supervise.Spec {
	return supervise.Spec{
		// Started after the dashboard (one container start at a time in
		// podman), but not depending on it, a viewer: restarting it must
		// not restart the agents (and stop their tasks).
		Name: api.ComponentSwarm, DependsOn: []string{api.ComponentChat}, After: []string{api.ComponentDashboard},
		Service: supervise.ServiceFunc(s.serve),
		Ready: supervise.ProbeFunc(func(context.Context) error {
			if _, ok := s.Image(); !ok {
				return errors.New("building the agent image")
			}
			return nil
		}),
		// The first build in a VM under emulation (vm.AgentImageTimeout),
		// after downloading the runtime.
		ReadyTimeout: 25 * time.Minute,
	}
}

// serve readies the image, then holds it ready until ctx ends: the image
// is ready only while this run says so.
func (s *Swarm) serve(ctx context.Context) error {
	s.ref.Store(nil)
	defer s.ref.Store(nil)
	build := s.Build
	if build == nil {
		build = s.ensureImage
	}
	ref, err := build(ctx)
	if err != nil {
		return err
	}
	s.ref.Store(&ref)
	<-ctx.Done()
	return nil
}

// ensureImage builds the agent image unless it exists: from
// swarm.containerfile when set (on the agents' development image when it
// names it), else the development image: inside the VM from the VM's own
// packages (vm.driver lima), or on the host from the Debian archive.
func (s *Swarm) ensureImage(ctx context.Context) (string, error) {
	p, err := s.connect(ctx)
	if err != nil {
		return "", err
	}
	cf := s.Config.Config.Swarm.Containerfile
	if cf == "" {
		return s.agentImage(ctx, p)
	}
	// Its base, when it builds on the agents' image (FROM
	// localhost/thesystem-agent-dev:latest).
	if b, err := os.ReadFile(cf); err == nil && strings.Contains(string(b), sandbox.DevRepo) {
		if _, err := s.agentImage(ctx, p); err != nil {
			return "", err
		}
	}
	ref, err := contentRef("localhost/thesystem-agent-custom", cf)
	if err != nil {
		return "", supervise.Permanent(err)
	}
	if ok, err := p.ImageExists(ref); err != nil || ok {
		return ref, err
	}
	supervise.Report(ctx, "building the agent image from %s", cf)
	w := s.Logs.Writer(api.ComponentSwarm, "build")
	defer func() { _ = w.Close() }()
	return ref, p.BuildImage(cf, ref, w)
}

// agentImage makes sure the agents' own image exists and names it.
func (s *Swarm) agentImage(ctx context.Context, p *sandbox.Podman) (string, error) {
	if s.Guest != nil {
		return s.guestImage(ctx)
	}
	if s.Foreign {
		return "", errForeign("vm.driver none (the agents' image from the host's podman, libraries and mmdebstrap)")
	}
	bin, err := s.runtimeBinary(ctx)
	if err != nil {
		return "", supervise.Permanent(err)
	}
	if s.RuntimeBinary == "" { // claude-code itself, not a test's stand-in
		_, noTool := exec.LookPath("mmdebstrap")
		if s.DebianBase != "" || noTool == nil || fileExists(sandbox.DefaultDevImage(bin).BaseFile(s.Paths.ImageCacheDir())) {
			return s.devImage(ctx, p, bin)
		}
		s.note(api.ComponentSwarm, "mmdebstrap is not installed: the agents get claude-code's own files only, no shell, no git "+
			"(install mmdebstrap, then `thesystem reinstall`, for their Debian userland)")
	}
	ref, err := contentRef("localhost/thesystem-agent-claude", bin)
	if err != nil {
		return "", err
	}
	supervise.Report(ctx, "preparing the agent image %s", ref)
	return ref, p.ImportImageFrom(ref, func(w io.Writer) error {
		return sandbox.RuntimeRootfs(ctx, bin, "claude", agentUID, agentGID, w)
	})
}

// guestImage builds the agents' image inside the VM: claude-code's linux
// package for the guest's architecture (Lima runs the host's), or the
// runtime override, copied in; the VM's own packages for the rest.
func (s *Swarm) guestImage(ctx context.Context) (string, error) {
	runtimeFile, pkg := s.RuntimeBinary, sandbox.RuntimePackage{}
	if runtimeFile != "" && s.Foreign {
		return "", errForeign("a runtime binary of the host's (THESYSTEM_CLAUDE_BIN)")
	}
	if runtimeFile == "" {
		var err error
		// Lima runs the host's architecture: the guest's is runtime.GOARCH.
		if pkg, err = runtimePackage(); err != nil {
			return "", supervise.Permanent(err)
		}
		if runtimeFile, err = s.fetchRuntime(ctx, pkg); err != nil {
			return "", err
		}
	}
	supervise.Report(ctx, "the agents' image in the VM: reused, or built from the VM's own packages (the first time: a few minutes)")
	w := s.Logs.Writer(api.ComponentSwarm, "build")
	defer func() { _ = w.Close() }()
	t0 := time.Now()
	ref, err := s.Guest.AgentImage(ctx, runtimeFile, pkg, w)
	if err != nil {
		return "", err
	}
	s.note(api.ComponentSwarm, fmt.Sprintf("the agents' image in the VM: %s (%s)", ref, time.Since(t0).Round(100*time.Millisecond)))
	return ref, nil
}

// fetchRuntime makes sure the runtime's package is in the state dir and
// intact (checked at every start), downloading it the first time, and
// returns its path.
func (s *Swarm) fetchRuntime(ctx context.Context, pkg sandbox.RuntimePackage) (string, error) {
	dir := s.Paths.RuntimesDir()
	registry := s.Registry
	if registry == "" {
		registry = sandbox.DefaultNPMRegistry
	}
	if !fileExists(filepath.Join(dir, pkg.FileName())) {
		s.note(api.ComponentSwarm, fmt.Sprintf("downloading %s@%s from %s", pkg.Name, pkg.Version, registry))
	}
	var last time.Time
	// A mirror that stalls does not hold the start for ever.
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	file, err := pkg.Fetch(ctx, nil, registry, dir, func(done, total int64) {
		if time.Since(last) < time.Second {
			return
		}
		last = time.Now()
		if total > 0 {
			supervise.Report(ctx, "downloading the agents' runtime %s@%s: %d of %d MB", pkg.Name, pkg.Version, done/1e6, total/1e6)
		} else {
			supervise.Report(ctx, "downloading the agents' runtime %s@%s: %d MB", pkg.Name, pkg.Version, done/1e6)
		}
	})
	if err != nil {
		return "", fmt.Errorf("the agents' runtime: %w", err)
	}
	return file, nil
}

// devImage makes sure the agents' development image exists: Debian with
// a shell, coreutils, git, ripgrep, make… and claude-code, built from the
// Debian archive (no registry), named after what goes into it.
func (s *Swarm) devImage(ctx context.Context, p *sandbox.Podman, bin string) (string, error) {
	d := sandbox.DefaultDevImage(bin)
	d.Base, d.CacheDir = s.DebianBase, s.Paths.ImageCacheDir()
	ref, err := d.Ref()
	if err != nil {
		return "", err
	}
	if ok, err := p.ImageExists(ref); err != nil || ok {
		if err == nil {
			err = p.TagImage(ref, sandbox.DevRepo, "latest")
		}
		return ref, err
	}
	if _, err := os.Stat(d.BaseFile(d.CacheDir)); err != nil && d.Base == "" {
		supervise.Report(ctx, "building the agents' Debian base from %s (once: about a minute)", d.Mirror)
	} else {
		supervise.Report(ctx, "building the agents' image %s", ref)
	}
	w := s.Logs.Writer(api.ComponentSwarm, "mmdebstrap")
	defer func() { _ = w.Close() }()
	t0 := time.Now()
	if err := p.ImportImageFrom(ref, func(out io.Writer) error { return d.Build(ctx, out, w) }); err != nil {
		return "", err
	}
	s.note(api.ComponentSwarm, fmt.Sprintf("built the agents' image %s in %s", ref, time.Since(t0).Round(time.Second)))
	// The name a swarm.containerfile builds on.
	return ref, p.TagImage(ref, sandbox.DevRepo, "latest")
}

// contentRef names an image after a file's content (the runtime binary,
// the Containerfile), so a change gets a new image and no change reuses it.
func contentRef(repo, file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("agent image: %w", err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return repo + ":" + hex.EncodeToString(h.Sum(nil))[:12], nil
}

// runtimePackage is claude-code's linux package for this machine.
func runtimePackage() (sandbox.RuntimePackage, error) {
	return sandbox.ClaudeCodePackage(ClaudeCodeVersion, runtime.GOARCH)
}

// claudeBinary is where the runtime's binary is unpacked in dir.
func claudeBinary(dir string, pkg sandbox.RuntimePackage) string {
	return filepath.Join(dir, strings.TrimSuffix(pkg.FileName(), ".tgz"), "claude")
}

// InstalledRuntime is the agent runtime if it is there already: the
// override, or claude-code's package downloaded into the state dir (its
// binary, once unpacked for the host's podman); "" otherwise.
func InstalledRuntime(paths config.Paths, override string) string {
	if override != "" {
		return override
	}
	pkg, err := runtimePackage()
	if err != nil {
		return ""
	}
	for _, p := range []string{claudeBinary(paths.RuntimesDir(), pkg), filepath.Join(paths.RuntimesDir(), pkg.FileName())} {
		if fileExists(p) {
			return p
		}
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// runtimeBinary finds claude-code's binary for this machine: the
// override, or its linux package downloaded into the state dir (checked)
// and unpacked there the first time.
func (s *Swarm) runtimeBinary(ctx context.Context) (string, error) {
	if s.RuntimeBinary != "" {
		return s.RuntimeBinary, nil
	}
	pkg, err := runtimePackage()
	if err != nil {
		return "", err
	}
	bin := claudeBinary(s.Paths.RuntimesDir(), pkg)
	if fileExists(bin) {
		return bin, nil
	}
	tgz, err := s.fetchRuntime(ctx, pkg)
	if err != nil {
		return "", err
	}
	if err := unpackRuntime(tgz, pkg, bin); err != nil {
		return "", fmt.Errorf("the agents' runtime: %w", err)
	}
	return bin, nil
}

// unpackRuntime writes the package's binary to bin (through a temporary
// file renamed into place).
func unpackRuntime(tgz string, pkg sandbox.RuntimePackage, bin string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return err
	}
	out, err := os.CreateTemp(filepath.Dir(bin), ".unpack-*")
	if err != nil {
		return err
	}
	defer func() { _ = out.Close(); _ = os.Remove(out.Name()) }()
	if err := pkg.Open(f, func(r io.Reader, _ int64) error {
		_, err := io.Copy(out, r)
		return err
	}); err != nil {
		return err
	}
	if err := out.Chmod(0o755); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(out.Name(), bin)
}
