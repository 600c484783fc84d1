package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/lima-vm/lima/v2/pkg/limatype"
	"github.com/sirupsen/logrus"

	"github.com/thesystem-dev/thesystem/engine"
	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
	"github.com/thesystem-dev/thesystem/engine/unixsock"
	"github.com/thesystem-dev/thesystem/engine/vm"
)

// newEngine builds the engine for a configuration.
func newEngine(l *config.Loaded, paths config.Paths, keyService string, log logrus.FieldLogger, exitOnStop bool, onShutdown func()) (*engine.Engine, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("own executable: %w", err)
	}
	return engine.New(engine.Options{
		Config: l, Paths: paths, KeyService: keyService, Version: version, Log: log,
		OnShutdown: onShutdown, ExitOnStop: exitOnStop,
		Sandbox:       true, // mode client too: its agents run here, its chat is remote
		LogFile:       paths.EngineLog(),
		InitBinary:    guestBinary(self),
		PodmanArgs:    strings.Fields(os.Getenv("THESYSTEM_PODMAN_ARGS")),
		PodmanConf:    os.Getenv("THESYSTEM_CONTAINERS_CONF"),
		RuntimeBinary: os.Getenv("THESYSTEM_CLAUDE_BIN"),
		DebianBase:    os.Getenv("THESYSTEM_DEBIAN_BASE"),
		ForeignHost:   runtime.GOOS != "linux" || os.Getenv("THESYSTEM_FOREIGN_HOST") == "1",
		NPMRegistry:   sandbox.NPMRegistry(os.Getenv),
		Limactl:       os.Getenv("THESYSTEM_LIMACTL"),
		VMImages:      vmImages(os.Getenv("THESYSTEM_VM_IMAGE")),
	})
}

// serveEngine builds the engine and serves its local API until ctx ends
// (the engine's shutdown is cancel); with start it brings the stack up
// too. served says how the API ended.
func serveEngine(ctx context.Context, cancel func(), l *config.Loaded, paths config.Paths, keyService string, exitOnStop, start bool) (*engine.Engine, <-chan error, error) {
	log := logrus.New()
	log.SetOutput(os.Stderr)
	log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	eng, err := newEngine(l, paths, keyService, log, exitOnStop, cancel)
	if err != nil {
		return nil, nil, err
	}
	srv := &api.Server{Backend: eng, Socket: paths.APISocket(), UID: -1}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	if start {
		go func() {
			if err := eng.Start(ctx); err != nil {
				log.WithError(err).Error("start")
			}
		}()
	}
	return eng, served, nil
}

// runDaemon runs the engine and its local API until ctx ends or a client
// asks it to shut down; it stops the stack on the way out. With start it
// brings the stack up once the API serves.
func runDaemon(ctx context.Context, l *config.Loaded, paths config.Paths, keyService string, exitOnStop, start bool, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	eng, served, err := serveEngine(ctx, cancel, l, paths, keyService, exitOnStop, start)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "thesystem daemon %s (pid %d): API on %s\n", version, os.Getpid(), paths.APISocket())
	select {
	case err := <-served:
		if errors.Is(err, unixsock.ErrInUse) {
			return fmt.Errorf("a daemon is already running (%w)", err)
		}
		_ = eng.Stop(context.Background())
		return err
	case <-ctx.Done():
	}
	_ = eng.Stop(context.Background())
	if err := <-served; err != nil {
		return err
	}
	fmt.Fprintln(out, "thesystem daemon: stopped")
	return nil
}

// guestBinary is the static linux build of thesystem the containers run as
// their init: on Linux this very binary; on macOS the one the app bundles
// for the VM's architecture (Contents/Resources/guest).
func guestBinary(self string) string { return guestBinaryFor(runtime.GOOS, runtime.GOARCH, self) }

func guestBinaryFor(goos, goarch, self string) string {
	if goos == "linux" {
		return self
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved // run through Contents/Resources/bin/thesystem
	}
	return filepath.Join(filepath.Dir(self), "..", "Resources", "guest", "thesystem-linux-"+goarch)
}

// vmImages is the VM image override ($THESYSTEM_VM_IMAGE): a disk image,
// or a directory with disk.qcow2 and, for a direct kernel boot, vmlinuz
// and initrd.img beside it.
func vmImages(loc string) []vm.Image {
	if loc == "" {
		return nil
	}
	arch := map[string]limatype.Arch{"amd64": limatype.X8664, "arm64": limatype.AARCH64}[runtime.GOARCH]
	fi, err := os.Stat(loc)
	if err != nil || !fi.IsDir() {
		return []vm.Image{{Location: loc, Arch: arch}}
	}
	im := vm.Image{Location: filepath.Join(loc, "disk.qcow2"), Arch: arch}
	if k := filepath.Join(loc, "vmlinuz"); fileExists(k) {
		im.Kernel, im.Cmdline = k, "root=/dev/vda console=ttyS0"
		if i := filepath.Join(loc, "initrd.img"); fileExists(i) {
			im.Initrd = i
		}
	}
	return []vm.Image{im}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
