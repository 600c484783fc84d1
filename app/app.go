package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/thesystem-dev/thesystem/cli"
	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/loginitem"
	"github.com/thesystem-dev/thesystem/engine/provider"
	"github.com/thesystem-dev/thesystem/engine/unixsock"
	"github.com/thesystem-dev/thesystem/menubar"
)

// runApp is app mode: the engine and its local API in this process, the
// menu on this (the main) goroutine, as macOS requires. Quit, or the end
// of ctx, stops the stack and returns.
func runApp(ctx context.Context, l *config.Loaded, paths config.Paths, keyService string, start bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	eng, served, err := serveEngine(ctx, cancel, l, paths, keyService, false, start)
	if err != nil {
		return err
	}
	var providers []string
	for _, p := range provider.All() {
		providers = append(providers, p.Name)
	}
	login, err := newLoginItem(l, false)
	if err != nil {
		return err
	}
	menu := &menubar.Menu{
		Client: &api.Client{Socket: paths.APISocket()}, Desktop: menubar.NewDesktop(), Login: login,
		Providers: providers,
		LogFile:   paths.DaemonLog(), Quit: cancel,
	}
	menuErr := make(chan error, 1)
	go func() {
		// The API first: if another engine runs, say so instead of a menu.
		if err := <-served; err != nil {
			if errors.Is(err, unixsock.ErrInUse) {
				err = fmt.Errorf("TheSystem is already running (%w)", err)
			}
			menuErr <- err
			cancel()
		}
	}()
	err = menubar.RunSystray(ctx, menu)
	_ = eng.Stop(context.Background())
	select {
	case e := <-menuErr:
		return e
	default:
	}
	return err
}

// newLoginItem is the login item for this platform and configuration.
func newLoginItem(l *config.Loaded, start bool) (cli.LoginItem, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, err
	}
	cfg := l.File
	if cfg != "" && !filepath.IsAbs(cfg) {
		cfg = filepath.Join(l.Dir, filepath.Base(cfg))
	}
	return loginitem.Options{
		Executable: exe, Config: cfg, StartStack: start, Home: home, UID: os.Getuid(),
		Desktop: runtime.GOOS == "darwin" || os.Getenv("XDG_CURRENT_DESKTOP") != "",
	}, nil
}
