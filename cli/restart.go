package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/api"
)

func newRestartCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "restart <component>",
		Short: "Restart one component (or one agent) and what depends on it",
		Long: `Restart one component, then the components that depend on it, in
dependency order (restarting chat also restarts the dashboard and swarm).
A failed component comes back from failed this way.`,
		Example: `  thesystem restart proxy
  thesystem restart swarm
  thesystem restart agent-2`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			comp, err := api.ParseComponent(args[0])
			switch {
			case err == nil:
			case agentNameRE.MatchString(args[0]): // the engine knows its agents
				comp = args[0]
			default:
				return &usageError{err}
			}
			if err := env.client().Restart(cmd.Context(), comp); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "restarted %s\n", comp)
			return nil
		},
	}
}
