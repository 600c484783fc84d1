package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/api"
)

func newStatusCommand(env *Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the health of every component",
		Long: `Show vm, agentchat-server, dashboard, swarm and agentauth-proxy as
healthy, degraded, failed or stopped, with the detail behind each state.
Exits 1 when the engine is not running.`,
		Example: `  thesystem status
  thesystem status --json | jq '.components[] | select(.state != "healthy")'`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := env.client().Status(cmd.Context())
			if errors.Is(err, api.ErrNoDaemon) && asJSON {
				_ = writeJSONTo(env.Stdout, map[string]any{"running": false, "daemon": false})
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONTo(env.Stdout, st)
			}
			printStatus(env.Stdout, st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func writeJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// health folds the supervisor's states into the seed's words.
func health(state string) string {
	switch state {
	case api.StateHealthy, api.StateFailed, api.StateStopped:
		return state
	default:
		return "degraded"
	}
}

// notInStack explains a component missing from the stack (an engine
// without its container tier).
const notInStack = "not in this stack"

func printStatus(w io.Writer, st api.Status) {
	byName := map[string]api.Component{}
	for _, c := range st.Components {
		byName[c.Name] = c
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tHEALTH\tSTATE\tSINCE\tRESTARTS\tDETAIL")
	known := map[string]bool{}
	for _, name := range api.Components() {
		known[name] = true
	}
	var rows []string
	for _, name := range api.Components() {
		rows = append(rows, name)
		if name == api.ComponentSwarm {
			for _, c := range st.Components { // the agents, under the swarm
				if !known[c.Name] {
					rows = append(rows, c.Name)
				}
			}
		}
	}
	for _, name := range rows {
		c, ok := byName[name]
		if !ok {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t%s\n", name, notInStack)
			continue
		}
		if !known[name] {
			c.Name = "  " + c.Name
		}
		detail := c.Detail
		if c.LastError != "" && c.State != api.StateHealthy {
			detail = strings.TrimSpace(detail + " " + "last error: " + c.LastError)
		}
		if detail == "" && len(c.Ports) > 0 {
			detail = fmt.Sprintf("127.0.0.1:%d", c.Ports[0])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", c.Name, health(c.State), c.State, since(c.Since), c.Restarts, detail)
	}
	_ = tw.Flush()
	if len(st.Agents) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "AGENT\tWORK\tTODAY")
		for _, a := range st.Agents {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Name, printable(work(a)), today(a))
		}
		_ = tw.Flush()
	}
	for _, c := range st.Components {
		if c.State == api.StateFailed && len(c.LastLines) > 0 {
			fmt.Fprintf(w, "\n%s failed; its last lines:\n  %s\n", c.Name, strings.Join(c.LastLines, "\n  "))
		}
	}
}

// today is what an agent spent today, as the proxy counted it, and its
// budget.
func today(a api.Agent) string {
	s := "0 tokens"
	if a.Today != nil {
		req := "requests"
		if a.Today.Requests == 1 {
			req = "request"
		}
		s = fmt.Sprintf("%s tokens in %d %s", api.ShortCount(a.Today.Tokens()), a.Today.Requests, req)
		if c := a.Today.CostText(); c != "-" {
			s += " · " + c
		}
	}
	if a.Budget != nil {
		s += fmt.Sprintf(" · budget %.0f%% used", 100*a.Budget.Fraction())
	}
	return s
}

func since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String()
}
