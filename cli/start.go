package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/compat"
)

func newStartCommand(env *Env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "start",
		Short: "Bring the whole stack up in dependency order",
		Long: `Start everything, each step gated on the health of the one before:
the key proxy, the VM (or host podman with vm.driver: none), the chat
server, the dashboard and the agents. Starts the engine daemon if none runs.
The configuration and the compatibility matrix are checked first; a problem
there stops the start before anything runs.`,
		Example: `  thesystem start
  thesystem start --config ./thesystem.yaml`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return startAction(env, g)
		},
	}
}

func startAction(env *Env, g *globals) error {
	l, err := loadConfig(env, g)
	if err != nil {
		return err
	}
	results, err := compat.Default(env.Build.Version).CheckAll(nil)
	if err != nil {
		return err
	}
	if blocked := compat.Blocking(results); len(blocked) > 0 {
		var b strings.Builder
		for _, r := range blocked {
			fmt.Fprintf(&b, "\n  %s: %s; %s", r.Component, r.Problem, r.Suggestion)
		}
		return fmt.Errorf("incompatible components, start refused:%s", b.String())
	}
	_ = l
	return notYet("starting the stack (the engine daemon and its supervisor)", 4)
}
