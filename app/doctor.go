package main

import (
	"context"
	"os"

	"github.com/thesystem-dev/thesystem/engine"
	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/component"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/doctor"
	"github.com/thesystem-dev/thesystem/engine/secrets"
)

// runDoctor runs the checks in this process, for when no engine runs.
func runDoctor(ctx context.Context, l *config.Loaded, keyService string) []api.Check {
	store, err := secrets.Open(ctx, keyService)
	home, _ := os.UserHomeDir()
	paths := config.HostPaths(os.LookupEnv, home)
	return doctor.Run(ctx, doctor.Inputs{Config: l, Store: store, StoreErr: err, Version: version,
		MissingRuntimes: component.MissingRuntimes(paths, l.Config, os.Getenv("THESYSTEM_CLAUDE_BIN")), LookPath: engine.LookTool(os.Getenv("THESYSTEM_LIMACTL"))})
}
