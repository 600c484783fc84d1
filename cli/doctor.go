package cli

import "github.com/spf13/cobra"

func newDoctorCommand(env *Env, g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check prerequisites and health, each finding with a fix",
		Long: `Check tools and their versions, the VM, podman, keys, the proxy, ports,
provisioning and compatibility. Each check has a stable id, a status and a
fix.`,
		Example: `  thesystem doctor
  thesystem doctor --json | jq '.checks[] | select(.status != "ok")'`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			if _, err := loadConfig(env, g); err != nil {
				return err
			}
			return notYet("the doctor's checks (tools, VM, podman, keys, proxy, ports)", 4)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
