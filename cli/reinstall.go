package cli

import "github.com/spf13/cobra"

func newReinstallCommand(*Env) *cobra.Command {
	return &cobra.Command{
		Use:   "reinstall",
		Short: "Rebuild the agent images and reprovision the components",
		Long: `Rebuild the cached agent images and reinstall the components in the VM
(or on the container host), then restart what was running.`,
		Example: `  thesystem reinstall`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			return notYet("rebuilding images and components", 5)
		},
	}
}
