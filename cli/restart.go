package cli

import (
	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/api"
)

func newRestartCommand(*Env) *cobra.Command {
	return &cobra.Command{
		Use:   "restart <component>",
		Short: "Restart one component and what depends on it",
		Long: `Restart one component, then the components that depend on it, in
dependency order (restarting chat also restarts the dashboard and swarm).`,
		Example: `  thesystem restart chat
  thesystem restart swarm`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			if _, err := api.ParseComponent(args[0]); err != nil {
				return &usageError{err}
			}
			return notYet("restarting a component of the running engine", 4)
		},
	}
}
