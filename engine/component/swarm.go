package component

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
	"github.com/thesystem-dev/thesystem/engine/supervise"
)

// The runtime releases the swarm installs: claude-code for backend
// claude, OpenAI's Codex CLI for backend codex.
const (
	ClaudeCodeVersion = "2.1.330"
	CodexVersion      = "0.171.0"
)

// runtimeCommand is the command a backend's runtime is on the agents'
// PATH ("" for a backend without one in the image).
func runtimeCommand(backend string) string {
	switch backend {
	case config.BackendClaude:
		return "claude"
	case config.BackendCodex:
		return "codex"
	}
	return ""
}

// runtimeVersion is the release of a runtime's command the swarm installs.
func runtimeVersion(command string) string {
	if command == "codex" {
		return CodexVersion
	}
	return ClaudeCodeVersion
}

// Swarm owns the agent image: it makes sure it exists (building it the
// first time) and says which it is while it runs; the agents depend on it.
type Swarm struct {
	Env
	// RuntimeBinary overrides every runtime (a test's stand-in, as claude
	// and as codex); "" installs each backend's release.
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
	AgentImage(ctx context.Context, runtimes []sandbox.Runtime, log io.Writer) (string, error)
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
	bins := map[string]string{} // the minimal image's: command → binary
	if s.RuntimeBinary != "" {
		for _, c := range s.commands() {
			bins[c] = s.RuntimeBinary
		}
	} else {
		runtimes, err := s.fetchRuntimes(ctx)
		if err != nil {
			return "", err
		}
		_, noTool := exec.LookPath("mmdebstrap")
		if s.DebianBase != "" || noTool == nil || fileExists(sandbox.DefaultDevImage().BaseFile(s.Paths.ImageCacheDir())) {
			return s.devImage(ctx, p, runtimes)
		}
		s.note(api.ComponentSwarm, "mmdebstrap is not installed: the agents get their runtimes' own files only, no shell, no git "+
			"(install mmdebstrap, then `thesystem reinstall`, for their Debian userland)")
		for _, r := range runtimes {
			if bins[r.Command], err = unpackRuntime(r, s.Paths.RuntimesDir()); err != nil {
				return "", fmt.Errorf("the agents' runtime: %w", err)
			}
		}
	}
	h := sha256.New()
	for _, c := range slices.Sorted(maps.Keys(bins)) {
		ref, err := contentRef(c, bins[c])
		if err != nil {
			return "", err
		}
		fmt.Fprintln(h, ref)
	}
	ref := "localhost/thesystem-agent-min:" + hex.EncodeToString(h.Sum(nil))[:12]
	if ok, err := p.ImageExists(ref); err != nil || ok {
		return ref, err
	}
	supervise.Report(ctx, "preparing the agent image %s", ref)
	return ref, p.ImportImageFrom(ref, func(w io.Writer) error {
		return sandbox.RuntimeRootfs(ctx, bins, agentUID, agentGID, w)
	})
}

// commands are the runtimes the swarm's agents run, by command (claude,
// codex), each once, in the order of swarm.backends.
func (s *Swarm) commands() []string {
	var out []string
	for _, g := range s.Config.Config.Swarm.AgentGroups() {
		if c := runtimeCommand(g.Backend); c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		out = []string{"claude"}
	}
	return out
}

// fetchRuntimes makes sure each runtime's linux package for this
// machine's architecture (the guest's: Lima runs the host's) is in the
// state dir, checked, and names them.
func (s *Swarm) fetchRuntimes(ctx context.Context) ([]sandbox.Runtime, error) {
	var out []sandbox.Runtime
	for _, c := range s.commands() {
		pkg, err := sandbox.PinnedPackage(c, runtimeVersion(c), runtime.GOARCH)
		if err != nil {
			return nil, supervise.Permanent(err)
		}
		file, err := s.fetchRuntime(ctx, pkg)
		if err != nil {
			return nil, err
		}
		out = append(out, sandbox.Runtime{Command: c, File: file, Package: pkg})
	}
	return out, nil
}

// guestImage builds the agents' image inside the VM: each runtime's linux
// package for the guest's architecture (Lima runs the host's), or the
// runtime override, copied in; the VM's own packages for the rest.
func (s *Swarm) guestImage(ctx context.Context) (string, error) {
	var runtimes []sandbox.Runtime
	if s.RuntimeBinary != "" {
		if s.Foreign {
			return "", errForeign("a runtime binary of the host's (THESYSTEM_CLAUDE_BIN)")
		}
		for _, c := range s.commands() {
			runtimes = append(runtimes, sandbox.Runtime{Command: c, File: s.RuntimeBinary})
		}
	} else {
		var err error
		if runtimes, err = s.fetchRuntimes(ctx); err != nil {
			return "", err
		}
	}
	supervise.Report(ctx, "the agents' image in the VM: reused, or built from the VM's own packages (the first time: a few minutes)")
	w := s.Logs.Writer(api.ComponentSwarm, "build")
	defer func() { _ = w.Close() }()
	t0 := time.Now()
	ref, err := s.Guest.AgentImage(ctx, runtimes, w)
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
// a shell, coreutils, git, ripgrep, make… and the runtimes, built from the
// Debian archive (no registry), named after what goes into it.
func (s *Swarm) devImage(ctx context.Context, p *sandbox.Podman, runtimes []sandbox.Runtime) (string, error) {
	d := sandbox.DefaultDevImage(runtimes...)
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

// contentRef names an image after a file's content (a runtime binary,
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

// MissingRuntimes are the runtimes cfg's swarm runs whose packages are
// not downloaded yet (the first start downloads them), by package and
// version; none with an override.
func MissingRuntimes(paths config.Paths, cfg config.Config, override string) []string {
	if override != "" {
		return nil
	}
	var missing []string
	s := &Swarm{Env: Env{Config: &config.Loaded{Config: cfg}}}
	for _, c := range s.commands() {
		pkg, err := sandbox.PinnedPackage(c, runtimeVersion(c), runtime.GOARCH)
		if err != nil || !fileExists(filepath.Join(paths.RuntimesDir(), pkg.FileName())) {
			missing = append(missing, pkg.Name+"@"+pkg.Version)
		}
	}
	return missing
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// unpackRuntime writes the package's binary into dir the first time (a
// directory named after the package, through a temporary file renamed
// into place) and returns its path.
func unpackRuntime(r sandbox.Runtime, dir string) (string, error) {
	bin := filepath.Join(dir, strings.TrimSuffix(r.Package.FileName(), ".tgz"), r.Command)
	if fileExists(bin) {
		return bin, nil
	}
	f, err := os.Open(r.File)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	out, err := os.CreateTemp(filepath.Dir(bin), ".unpack-*")
	if err != nil {
		return "", err
	}
	defer func() { _ = out.Close(); _ = os.Remove(out.Name()) }()
	if err := r.Package.Open(f, func(r io.Reader, _ int64) error {
		_, err := io.Copy(out, r)
		return err
	}); err != nil {
		return "", err
	}
	if err := out.Chmod(0o755); err != nil {
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return bin, os.Rename(out.Name(), bin)
}
