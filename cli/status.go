package cli

import "github.com/spf13/cobra"

func newStatusCommand(*Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the health of every component",
		Long: `Show vm, agentchat-server, dashboard, swarm and agentauth-proxy as
healthy, degraded or failed, with the detail behind each state.`,
		Example: `  thesystem status
  thesystem status --json | jq '.components[] | select(.state != "healthy")'`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			return notYet("status from the running engine (its local API)", 4)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
