package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/thesystem-dev/thesystem/engine"
	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/unixsock"
)

// runDaemon runs the engine and its local API until ctx ends or a client
// asks it to shut down; it stops the stack on the way out.
func runDaemon(ctx context.Context, l *config.Loaded, paths config.Paths, keyService string, exitOnStop bool, out io.Writer) error {
	log := logrus.New()
	log.SetOutput(os.Stderr)
	log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("own executable: %w", err)
	}
	eng, err := engine.New(engine.Options{
		Config: l, Paths: paths, KeyService: keyService, Version: version, Log: log,
		OnShutdown: cancel, ExitOnStop: exitOnStop,
		// With vm.driver none the containers run on this host, and this
		// (static) binary is their init. The VM tier brings its own.
		Sandbox:       l.Config.VM.Driver == config.DriverNone && l.Config.Mode == config.ModeServer,
		InitBinary:    self,
		PodmanArgs:    strings.Fields(os.Getenv("THESYSTEM_PODMAN_ARGS")),
		RuntimeBinary: os.Getenv("THESYSTEM_CLAUDE_BIN"),
	})
	if err != nil {
		return err
	}
	srv := &api.Server{Backend: eng, Socket: paths.APISocket(), UID: -1}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
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
