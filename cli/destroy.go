package cli

import "github.com/spf13/cobra"

func newDestroyCommand(*Env) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Stop everything and delete the VM and its state",
		Long: `Stop the stack, then delete the VM and everything TheSystem keeps in it.
Keys (in the OS key store) and thesystem.yaml are kept; run
'thesystem start' to rebuild from the configuration.`,
		Example: `  thesystem destroy
  thesystem destroy --yes   # no confirmation prompt`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			return notYet("destroying the VM tier", 6)
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}
