package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

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
	eng, err := engine.New(engine.Options{
		Config: l, Paths: paths, KeyService: keyService, Version: version, Log: log,
		OnShutdown: cancel, ExitOnStop: exitOnStop,
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
