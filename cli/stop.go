package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/api"
)

func newStopCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop the stack: agents, dashboard, chat server, then the VM",
		Long: `Stop in reverse dependency order: each agent gets SIGTERM and 5 s to exit
before it is killed, then the dashboard, the chat server, the VM and the key
proxy stop. Agent workspaces (named volumes) survive. A daemon that 'start'
launched exits too.`,
		Example: `  thesystem stop`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := env.client().Stop(cmd.Context())
			if errors.Is(err, api.ErrNoDaemon) {
				fmt.Fprintln(env.Stdout, "nothing is running")
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, "stopped")
			return nil
		},
	}
}
