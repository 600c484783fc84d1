package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/thesystem-dev/thesystem/engine/config"
)

func newConfigCommand(env *Env, g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the resolved configuration",
		Long: `Show the configuration TheSystem would run with: thesystem.yaml (found as
for every command) over the defaults, with ${VAR} substituted, vm.driver
resolved for this host and paths made absolute. Problems are reported with
the file, line and key at fault, and exit 2.`,
		Example: `  thesystem config
  thesystem config --json | jq .config.swarm
  thesystem config --config ./other.yaml`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return configAction(env, g, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (config, file, paths, warnings)")
	return cmd
}

type configOutput struct {
	*config.Loaded
	Paths config.Paths `json:"paths"`
}

func configAction(env *Env, g *globals, asJSON bool) error {
	l, err := loadConfig(env, g)
	if err != nil {
		return err
	}
	paths := env.paths()
	if asJSON {
		return writeJSONTo(env.Stdout, configOutput{Loaded: l, Paths: paths})
	}
	src := "defaults (no thesystem.yaml found)"
	if l.File != "" {
		src = l.File
	}
	fmt.Fprintf(env.Stdout, "# source: %s\n# state dir: %s\n# runtime dir: %s\n", src, paths.StateDir, paths.RuntimeDir)
	enc := yaml.NewEncoder(env.Stdout)
	enc.SetIndent(2)
	if err := enc.Encode(l.Config); err != nil {
		return fmt.Errorf("print config: %w", err)
	}
	return enc.Close()
}
