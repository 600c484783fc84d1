package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/config"
)

func newInitCommand(env *Env) *cobra.Command {
	var (
		force, yes bool
		dir        string
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented thesystem.yaml, then (on a terminal) store a key and check what is missing",
		Long: `Write thesystem.yaml, every key commented and set to its default, in the
working directory (or --dir). An existing file is never replaced unless
--force is given.

On a terminal, init then guides the first start: it asks which runtime
the agents run (claude: claude-code, Anthropic; codex: OpenAI's Codex CLI),
offers to store that provider's API key (typed without echo, straight into
the OS key store; its fingerprint is shown, never the key), and runs the
doctor's checks, printing what to fix. Without a terminal, or with --yes,
it only writes the file.`,
		Example: `  thesystem init
  thesystem init --dir ~/src/myproject
  thesystem init --yes      # no questions: the file with the defaults
  thesystem init --force    # replace an existing file with the defaults`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return initAction(cmd.Context(), env, dir, force, yes)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing thesystem.yaml")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "ask nothing: write the defaults (as without a terminal)")
	cmd.Flags().StringVar(&dir, "dir", "", "directory to write it in (default: the working directory)")
	return cmd
}

func initAction(ctx context.Context, env *Env, dir string, force, yes bool) error {
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
	_, interactive := isTerminal(env.Stdin)
	if !interactive || yes {
		if err := config.WriteDefault(path, force); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "wrote %s\nnext: store a key with `thesystem keys set anthropic`, then run `thesystem start`\n", displayPath(env, path))
		return nil
	}
	if !force {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("%s %w (use --force to overwrite it)", path, config.ErrExists)
		}
	}
	backend, err := ask(env, "Which runtime should the agents run: claude (claude-code, Anthropic) or codex (OpenAI's Codex CLI)?", config.BackendClaude,
		config.BackendClaude, config.BackendCodex)
	if err != nil {
		return err
	}
	content, err := config.WithBackend(backend)
	if err != nil {
		return err
	}
	if err := config.WriteTemplate(path, content, force); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "wrote %s (swarm.backend: %s)\n", displayPath(env, path), backend)

	prov := config.BackendProvider(backend)
	fp, err := storedFingerprint(ctx, env, prov)
	switch {
	case err != nil:
		fmt.Fprintf(env.Stdout, "the key store cannot be read (%v): store the key later with `thesystem keys set %s`\n", err, prov)
	case fp != "":
		fmt.Fprintf(env.Stdout, "a %s key is stored already (%s)\n", prov, fp)
	default:
		store, err := ask(env, fmt.Sprintf("Store your %s API key now? It goes into the OS key store, never into a file.", prov), "yes", "yes", "no")
		if err != nil {
			return err
		}
		if store == "yes" {
			if err := keysSetAction(ctx, env, []string{prov}, false); err != nil {
				fmt.Fprintf(env.Stdout, "not stored: %v\n(store it later with `thesystem keys set %s`)\n", err, prov)
			}
		} else {
			fmt.Fprintf(env.Stdout, "later: `thesystem keys set %s`\n", prov)
		}
	}

	// The doctor's checks, on the file just written.
	if env.Doctor != nil {
		l, err := config.Load(path, dir, config.Options{})
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, "checking what the stack needs…")
		var todo []api.Check
		for _, c := range env.Doctor(ctx, l, keyService(env)) {
			if c.Status != api.CheckOK {
				todo = append(todo, c)
			}
		}
		if len(todo) == 0 {
			fmt.Fprintln(env.Stdout, "everything the stack needs is here")
		}
		for _, c := range todo {
			fmt.Fprintf(env.Stdout, "  %s %s: %s\n      fix: %s\n", c.Status, c.ID, c.Detail, c.Fix)
		}
	}
	fmt.Fprintln(env.Stdout, "next: `thesystem start`")
	return nil
}

// ask asks a question on the terminal until the answer is one of choices
// (a prefix will do; empty takes def).
func ask(env *Env, question, def string, choices ...string) (string, error) {
	for {
		fmt.Fprintf(env.Stderr, "%s [%s] (%s): ", question, strings.Join(choices, "/"), def)
		line, err := readLine(env.Stdin)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "", errors.New("no answer (end of input)")
			}
			return "", err
		}
		line = strings.ToLower(strings.TrimSpace(line))
		if line == "" {
			return def, nil
		}
		var match []string
		for _, c := range choices {
			if strings.HasPrefix(c, line) {
				match = append(match, c)
			}
		}
		switch len(match) {
		case 1:
			return match[0], nil
		case 0:
			fmt.Fprintf(env.Stderr, "%q is not one of %s\n", line, strings.Join(choices, ", "))
		default:
			fmt.Fprintf(env.Stderr, "%q could be %s: say which\n", line, strings.Join(match, " or "))
		}
	}
}

// readLine reads one line, a byte at a time: nothing after it is taken
// from the terminal (the key prompt reads what follows).
func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	var c [1]byte
	for {
		n, err := r.Read(c[:])
		if n == 1 {
			if c[0] == '\n' {
				return b.String(), nil
			}
			b.WriteByte(c[0])
			if b.Len() > 4096 {
				return "", errors.New("an answer longer than 4096 bytes")
			}
		}
		if err != nil {
			if b.Len() > 0 && errors.Is(err, io.EOF) {
				return b.String(), nil
			}
			return "", err
		}
	}
}
