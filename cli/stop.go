package cli

import "github.com/spf13/cobra"

func newStopCommand(*Env) *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop the stack: agents, dashboard, chat server, then the VM",
		Long: `Stop in reverse dependency order: each agent gets SIGTERM and 5 s to exit
before it is killed, then the dashboard, the chat server and the VM stop.
Agent workspaces (named volumes) survive.`,
		Example: `  thesystem stop`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			return notYet("stopping the stack (the engine daemon and its supervisor)", 4)
		},
	}
}
