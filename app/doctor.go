package main

import (
	"context"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/doctor"
	"github.com/thesystem-dev/thesystem/engine/secrets"
)

// runDoctor runs the checks in this process, for when no engine runs.
func runDoctor(ctx context.Context, l *config.Loaded, keyService string) []api.Check {
	store, err := secrets.Open(ctx, keyService)
	return doctor.Run(ctx, doctor.Inputs{Config: l, Store: store, StoreErr: err, Version: version})
}
