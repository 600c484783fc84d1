// Command thesystem is TheSystem's single binary: the CLI, and (on macOS, as
// TheSystem.app) the menu-bar app with the engine in-process. This package
// is the composition root; it only wires the parts together.
package main

import (
	"context"
	"os"
	"os/signal"
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
	code := cli.Run(ctx, os.Args[1:], cli.Env{
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Build:  cli.Build{Version: version, Commit: commit},
		// The engine's parts the CLI runs in-process.
		RunProxy:     runProxy,
		RunDaemon:    runDaemon,
		Doctor:       runDoctor,
		RunInit:      runInit,
		RunChat:      runChat,
		RunAgent:     runAgent,
		RunDashboard: runDashboard,
	})
	stop()
	os.Exit(code)
}
