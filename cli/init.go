package cli

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/config"
)

func newInitCommand(env *Env) *cobra.Command {
	var (
		force bool
		dir   string
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented thesystem.yaml with the defaults",
		Long: `Write thesystem.yaml, every key commented and set to its default, in the
working directory (or --dir). An existing file is never replaced unless
--force is given.`,
		Example: `  thesystem init
  thesystem init --dir ~/src/myproject
  thesystem init --force    # replace an existing file with the defaults`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return initAction(env, dir, force)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing thesystem.yaml")
	cmd.Flags().StringVar(&dir, "dir", "", "directory to write it in (default: the working directory)")
	return cmd
}

func initAction(env *Env, dir string, force bool) error {
	wd, err := env.getwd()
	if err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	if dir == "" {
		dir = wd
	} else if !filepath.IsAbs(dir) {
		dir = filepath.Join(wd, dir)
	}
	path := filepath.Join(dir, config.FileName)
	if err := config.WriteDefault(path, force); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "wrote %s\nnext: store a key with `thesystem keys set anthropic`, then run `thesystem start`\n", displayPath(env, path))
	return nil
}
