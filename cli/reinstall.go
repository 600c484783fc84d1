package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newReinstallCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "reinstall",
		Short: "Rebuild the agent images and reprovision the components",
		Long: `Rebuild the cached agent images and reinstall the components in the VM
(or on the container host), then restart what was running.`,
		Example: `  thesystem reinstall`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := env.client().Reinstall(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, "reinstalled: images and runtimes rebuilt")
			return nil
		},
	}
}
