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

	ref atomic.Pointer[string]
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
		ReadyTimeout: 15 * time.Minute,
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
// swarm.containerfile when set, else from claude-code's own files.
func (s *Swarm) ensureImage(ctx context.Context) (string, error) {
	p, err := s.connect(ctx)
	if err != nil {
		return "", err
	}
	if cf := s.Config.Config.Swarm.Containerfile; cf != "" {
		// Its base, when it builds on the agents' image (FROM
		// localhost/thesystem-agent-dev:latest).
		if b, err := os.ReadFile(cf); err == nil && strings.Contains(string(b), devRepo) && s.RuntimeBinary == "" {
			bin, err := s.runtimeBinary(ctx)
			if err != nil {
				return "", supervise.Permanent(err)
			}
			if _, err := s.devImage(ctx, p, bin); err != nil {
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
			err = p.TagImage(ref, devRepo, "latest")
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
	return ref, p.TagImage(ref, devRepo, "latest")
}

// devRepo is the agents' development image's name; its tag "latest" is
// the one built last.
const devRepo = "localhost/thesystem-agent-dev"

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

// claudeBinary is where npm puts claude-code's native binary under dir.
func claudeBinary(dir string) string {
	arch := map[string]string{"amd64": "x64", "arm64": "arm64"}[runtime.GOARCH]
	return filepath.Join(dir, "node_modules", "@anthropic-ai", "claude-code-linux-"+arch, "claude")
}

// InstalledRuntime is the agent runtime's binary if it is there already:
// override, or claude-code installed in the state dir; "" otherwise.
func InstalledRuntime(paths config.Paths, override string) string {
	if override != "" {
		return override
	}
	if bin := claudeBinary(paths.RuntimesDir()); fileExists(bin) {
		return bin
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// runtimeBinary finds claude-code, installing it from npm into the state
// dir when it is not there yet.
func (s *Swarm) runtimeBinary(ctx context.Context) (string, error) {
	if bin := InstalledRuntime(s.Paths, s.RuntimeBinary); bin != "" {
		return bin, nil
	}
	dir := s.Paths.RuntimesDir()
	bin := claudeBinary(dir)
	s.note(api.ComponentSwarm, "installing @anthropic-ai/claude-code@"+ClaudeCodeVersion+" from npm into "+dir)
	cmd := exec.CommandContext(ctx, "npm", "install", "--prefix", dir, "--no-audit", "--no-fund", "--ignore-scripts",
		"--loglevel=error", "@anthropic-ai/claude-code@"+ClaudeCodeVersion)
	w := s.Logs.Writer(api.ComponentSwarm, "npm")
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	_ = w.Close()
	if err != nil {
		return "", fmt.Errorf("install claude-code with npm: %w", err)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("claude-code installed but %s is missing", bin)
	}
	return bin, nil
}
