package cli

import (
	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/api"
)

func newLogsCommand(*Env) *cobra.Command {
	var (
		follow bool
		lines  int
	)
	cmd := &cobra.Command{
		Use:   "logs [component]",
		Short: "Show the logs of every component, or of one",
		Long: `Show the multiplexed logs, one line per entry with the component and a
timestamp, or only one component's. -f follows new lines as they come.`,
		Example: `  thesystem logs
  thesystem logs chat -f
  thesystem logs agentauth-proxy -n 200`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 1 {
				if _, err := api.ParseComponent(args[0]); err != nil {
					return &usageError{err}
				}
			}
			if lines < 0 {
				return usagef("-n must be 0 or more, got %d", lines)
			}
			return notYet("logs from the running engine", 4)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow new lines")
	cmd.Flags().IntVarP(&lines, "lines", "n", 100, "how many recent lines to show")
	return cmd
}
