// Command thesystem is TheSystem's single binary: the CLI, and (on macOS, as
// TheSystem.app) the menu-bar app with the engine in-process. This package
// is the composition root; it only wires the parts together.
package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/thesystem-dev/thesystem/cli"
)

// Set by the linker: -X main.version=… -X main.commit=….
var (
	version = "dev"
	commit  = ""
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, appArgs(os.Args), cli.Env{
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Build:  cli.Build{Version: version, Commit: commit},
		// The engine's parts the CLI runs in-process.
		RunProxy:        runProxy,
		RunDaemon:       runDaemon,
		Doctor:          runDoctor,
		RunInit:         runInit,
		RunChat:         runChat,
		RunAgent:        runAgent,
		RunDashboard:    runDashboard,
		RunApp:          runApp,
		BuildGuestImage: buildGuestImage,
		LoginItem:       newLoginItem,
	})
	stop()
	os.Exit(code)
}

// appArgs are the CLI's arguments: as TheSystem.app's executable (opened
// from the Finder, maybe with a -psn_ argument) it is app mode.
func appArgs(argv []string) []string {
	args := argv[1:]
	if filepath.Base(argv[0]) != "TheSystem" {
		return args
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-psn_") {
		return []string{"app"}
	}
	return args
}
