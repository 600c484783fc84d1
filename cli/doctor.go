package cli

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/api"
)

func newDoctorCommand(env *Env, g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check prerequisites and health, each finding with a fix",
		Long: `Check the configuration, compatibility, tools and their versions, the VM
driver, the key store and its keys, the ports (free, or held by this
engine) and the proxy's health. Each check has a stable id, a status
(ok, warn, fail) and a fix. Exits 1 when a check fails.`,
		Example: `  thesystem doctor
  thesystem doctor --json | jq '.checks[] | select(.status != "ok")'`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := loadConfig(env, g)
			if err != nil {
				return err
			}
			checks, err := env.client().Doctor(cmd.Context())
			running := err == nil
			switch {
			case errors.Is(err, api.ErrNoDaemon) && env.Doctor != nil:
				checks = env.Doctor(cmd.Context(), l, keyService(env))
			case err != nil:
				return err
			}
			failed := 0
			for _, c := range checks {
				if c.Status == api.CheckFail {
					failed++
				}
			}
			if asJSON {
				if err := writeJSONTo(env.Stdout, map[string]any{"engine_running": running, "checks": checks}); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "CHECK\tSTATUS\tDETAIL\tFIX")
				for _, c := range checks {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.ID, c.Status, c.Detail, c.Fix)
				}
				_ = tw.Flush()
				if !running {
					fmt.Fprintln(env.Stdout, "(the engine is not running: checks ran in this process)")
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d check(s) failed", failed)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
