package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/api"
)

func newLogsCommand(env *Env) *cobra.Command {
	var (
		follow bool
		lines  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "logs [component]",
		Short: "Show the logs of every component, or of one",
		Long: `Show the multiplexed logs, one line per entry with the time and the
component, or only one component's. -f follows new lines as they come.`,
		Example: `  thesystem logs
  thesystem logs proxy -f
  thesystem logs agent-2
  thesystem logs agentauth-proxy -n 200 --json`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			comp := ""
			if len(args) == 1 {
				c, err := api.ParseComponent(args[0])
				switch {
				case err == nil:
					comp = c
				case agentNameRE.MatchString(args[0]): // the engine knows its agents
					comp = args[0]
				default:
					return &usageError{err}
				}
			}
			if lines < 0 {
				return usagef("-n must be 0 or more, got %d", lines)
			}
			print := func(l api.LogLine) bool {
				if asJSON {
					_ = writeJSONLine(env.Stdout, l)
				} else {
					fmt.Fprintf(env.Stdout, "%s %-16s %s\n", l.Time.Local().Format("15:04:05.000"), l.Component, l.Text)
				}
				return true
			}
			c := env.client()
			if follow {
				return c.FollowLogs(cmd.Context(), comp, lines, print)
			}
			ls, err := c.Logs(cmd.Context(), comp, lines)
			if err != nil {
				return err
			}
			for _, l := range ls {
				print(l)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow new lines")
	cmd.Flags().IntVarP(&lines, "lines", "n", 100, "how many recent lines to show")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines")
	return cmd
}

var agentNameRE = regexp.MustCompile(`^agent-[0-9]+$`)

func writeJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
