package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

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
					fmt.Fprintf(env.Stdout, "%s %-16s %s\n", l.Time.Local().Format("15:04:05.000"), printable(l.Component), printable(l.Text))
				}
				return true
			}
			c := env.client()
			if follow {
				return c.FollowLogs(cmd.Context(), comp, lines, print)
			}
			ls, err := c.Logs(cmd.Context(), comp, lines)
			if errors.Is(err, api.ErrNoDaemon) {
				// What the last daemon wrote: why a failed start failed.
				file := env.paths().EngineLog()
				if ls, err = api.ReadLogFile([]string{file + ".1", file}, comp, lines); err != nil {
					return err
				}
				if len(ls) == 0 {
					return fmt.Errorf("%w (and no log of an earlier one in %s)", api.ErrNoDaemon, displayPath(env, file))
				}
				fmt.Fprintf(env.Stderr, "the engine is not running: its last lines, from %s\n", displayPath(env, file))
			}
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

// printable is s for a terminal: what agents and containers print (their
// logs, their chat messages) is theirs to choose, so a control character
// (an escape sequence could move the cursor, rewrite a line above, set the
// title or the clipboard) is shown as \xNN, never sent as it is. Tabs
// stay; newlines are the caller's to handle.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if isControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isControl: C0 and C1 controls and DEL, but for tab and newline.
func isControl(r rune) bool {
	return (r < 0x20 && r != '\t' && r != '\n') || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError
}

func writeJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
