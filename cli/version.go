package cli

import (
	"fmt"
	"runtime"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/compat"
)

func newVersionCommand(env *Env) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the version of TheSystem and the component versions it supports",
		Example: `  thesystem version
  thesystem version --json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return versionAction(env, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

type versionOutput struct {
	Build
	Go         string             `json:"go"`
	Platform   string             `json:"platform"`
	Components []compat.Component `json:"components"`
}

func versionAction(env *Env, asJSON bool) error {
	out := versionOutput{
		Build:      env.Build,
		Go:         runtime.Version(),
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
		Components: compat.Default(env.Build.Version).Components(),
	}
	if asJSON {
		return writeJSONTo(env.Stdout, out)
	}
	fmt.Fprintf(env.Stdout, "thesystem %s", out.Version)
	if out.Commit != "" {
		fmt.Fprintf(env.Stdout, " (%s)", out.Commit)
	}
	fmt.Fprintf(env.Stdout, " %s %s\n\n", out.Go, out.Platform)
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tSUPPORTED\tEMBEDDED\tPACKAGE")
	for _, c := range out.Components {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, c.Range, dash(c.Embedded), dash(c.Package))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
