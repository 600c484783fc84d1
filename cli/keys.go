package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/provider"
)

func newKeysCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage provider API keys in the OS key store",
		Long: `Provider API keys live only in the OS key store (macOS Keychain, Linux
Secret Service) and in the key proxy's memory. Agents never see them.
Providers: ` + strings.Join(provider.Names(), ", ") + `.`,
		Example: `  thesystem keys set anthropic        # prompts, no echo
  pbpaste | thesystem keys set openai  # or from stdin
  thesystem keys list`,
		Args: usageArgs(cobra.NoArgs),
		RunE: showHelp,
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "set <provider> [key]",
			Short: "Store a provider's key (read from a no-echo prompt or stdin)",
			Example: `  thesystem keys set anthropic
  thesystem keys set openai < key.txt`,
			Args: usageArgs(cobra.RangeArgs(1, 2)),
			RunE: func(_ *cobra.Command, args []string) error {
				if err := checkProvider(args[0]); err != nil {
					return err
				}
				if len(args) == 2 {
					fmt.Fprintln(env.Stderr, "warning: a key on the command line lands in your shell history and the process list; "+
						"next time let `thesystem keys set <provider>` prompt for it or read it from stdin")
				}
				return notYet("storing keys in the OS key store", 3)
			},
		},
		&cobra.Command{
			Use:     "get <provider>",
			Short:   "Print a provider's key (only to a terminal, after confirmation)",
			Example: `  thesystem keys get anthropic`,
			Args:    usageArgs(cobra.ExactArgs(1)),
			RunE: func(_ *cobra.Command, args []string) error {
				if err := checkProvider(args[0]); err != nil {
					return err
				}
				return notYet("reading keys from the OS key store", 3)
			},
		},
		&cobra.Command{
			Use:     "list",
			Short:   "List providers with a stored key and its fingerprint (never the key)",
			Example: `  thesystem keys list`,
			Args:    usageArgs(cobra.NoArgs),
			RunE: func(*cobra.Command, []string) error {
				return notYet("listing keys in the OS key store", 3)
			},
		},
		&cobra.Command{
			Use:     "delete <provider>",
			Short:   "Delete a provider's key",
			Example: `  thesystem keys delete openai`,
			Args:    usageArgs(cobra.ExactArgs(1)),
			RunE: func(_ *cobra.Command, args []string) error {
				if err := checkProvider(args[0]); err != nil {
					return err
				}
				return notYet("deleting keys from the OS key store", 3)
			},
		},
		newKeysRotateCommand(),
	)
	return cmd
}

func newKeysRotateCommand() *cobra.Command {
	var tokens bool
	cmd := &cobra.Command{
		Use:   "rotate [provider]",
		Short: "Store a new key and hot-swap it into the running proxy, or re-issue agent tokens",
		Example: `  thesystem keys rotate anthropic   # new key, no dropped requests
  thesystem keys rotate --tokens    # revoke and re-issue every agent token`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(_ *cobra.Command, args []string) error {
			switch {
			case tokens && len(args) > 0:
				return usagef("give either a provider or --tokens, not both")
			case !tokens && len(args) == 0:
				return usagef("name the provider whose key to rotate, or give --tokens")
			case len(args) == 1:
				if err := checkProvider(args[0]); err != nil {
					return err
				}
			}
			return notYet("rotating keys and tokens in the running proxy", 3)
		},
	}
	cmd.Flags().BoolVar(&tokens, "tokens", false, "revoke and re-issue every agent token")
	return cmd
}

func checkProvider(p string) error {
	if _, err := provider.Parse(p); err != nil {
		return &usageError{err}
	}
	return nil
}
