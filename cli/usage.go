package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/api"
)

func newUsageCommand(env *Env) *cobra.Command {
	var asJSON bool
	var sinceFlag, agent string
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Show what the agents spent: requests, tokens and estimated cost per agent and model",
		Long: `Show the requests and tokens each agent spent, per provider and model, as
the key proxy counted them (never the runtimes' own claims), with an
estimated cost from the price table (its date is shown; thesystem.yaml's
proxy.prices adds or overrides models; a model with no price shows its
tokens and no cost), each agent's total and what its budget leaves it.
The account is kept across restarts (rebuilt from the proxy's audit log).`,
		Example: `  thesystem usage
  thesystem usage --since 24h --agent agent-1
  thesystem usage --since 7d --json | jq '.total.cost_usd'`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := env.client().Usage(cmd.Context(), sinceFlag, agent)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONTo(env.Stdout, u)
			}
			printUsage(env.Stdout, u)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&sinceFlag, "since", "", "only since then: a duration back from now (30m, 24h, 7d) or a time (2026-12-01T09:00:00Z); default all")
	cmd.Flags().StringVar(&agent, "agent", "", "only this agent")
	return cmd
}

func printUsage(w io.Writer, u api.Usage) {
	period := "since the first record"
	if !u.Since.IsZero() {
		period = "since " + u.Since.Local().Format("2006-01-02 15:04")
	}
	if len(u.Rows) == 0 {
		fmt.Fprintf(w, "no requests %s\n", period)
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "AGENT\tPROVIDER\tMODEL\tREQUESTS\tTOKENS IN\tOUT\tCACHE READ\tCACHE WRITE\tCOST")
		for _, r := range u.Rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", printable(r.Agent), r.Provider, printable(orDash(r.Model)), counts(r))
		}
		fmt.Fprintf(tw, "TOTAL\t\t\t%s\n", counts(u.Total))
		_ = tw.Flush()
		fmt.Fprintf(w, "%s; costs are estimates at the prices of %s", period, u.PricesDate)
		if len(u.Unpriced) > 0 {
			fmt.Fprintf(w, "; no price for %s (tokens only: set proxy.prices in thesystem.yaml)", strings.Join(u.Unpriced, ", "))
		}
		fmt.Fprintln(w)
	}
	for _, a := range u.Agents {
		if a.Budget != nil {
			fmt.Fprintf(w, "%s: %s\n", a.Agent, budgetText(*a.Budget))
		}
	}
}

// counts is a row's numbers as the table's cells.
func counts(r api.UsageRow) string {
	return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s", r.Requests, api.ShortCount(r.TokensIn), api.ShortCount(r.TokensOut), api.ShortCount(r.CacheRead), api.ShortCount(r.CacheWrite), r.CostText())
}

// budgetText says what a budget leaves.
func budgetText(b api.BudgetLeft) string {
	var parts []string
	if b.Tokens > 0 {
		parts = append(parts, fmt.Sprintf("%s of %s tokens", api.ShortCount(b.UsedTokens), api.ShortCount(b.Tokens)))
	}
	if b.Requests > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d requests", b.UsedRequests, b.Requests))
	}
	return fmt.Sprintf("budget %s used (%.0f%%), resets %s", strings.Join(parts, ", "), 100*b.Fraction(), b.Resets.Local().Format("2006-01-02 15:04"))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
