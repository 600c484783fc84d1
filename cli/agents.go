package cli

import "github.com/spf13/cobra"

func newAgentsCommand(*Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agents",
		Short: "List the agents and read their logs",
		Example: `  thesystem agents list
  thesystem agents logs agent-1 -f`,
		Args: usageArgs(cobra.NoArgs),
		RunE: showHelp,
	}
	var asJSON, follow bool
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the agents with their backend, provider, state and uptime",
		Example: `  thesystem agents list --json`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			return notYet("the agent swarm", 5)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	logs := &cobra.Command{
		Use:     "logs <agent>",
		Short:   "Show one agent's log",
		Example: `  thesystem agents logs agent-2 -f`,
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(*cobra.Command, []string) error {
			return notYet("the agent swarm", 5)
		},
	}
	logs.Flags().BoolVarP(&follow, "follow", "f", false, "follow new lines")
	cmd.AddCommand(list, logs)
	return cmd
}
