package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/provider"
	"github.com/thesystem-dev/thesystem/engine/secrets"
)

func newKeysCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage provider API keys in the OS key store",
		Long: `Provider API keys live only in the OS key store (macOS Keychain, Linux
Secret Service) and in the key proxy's memory. Agents never see them; they
get a revocable token instead. Providers: ` + strings.Join(provider.Names(), ", ") + `.`,
		Example: `  thesystem keys set anthropic        # prompts, no echo
  pbpaste | thesystem keys set openai  # or from stdin
  thesystem keys list`,
		Args: usageArgs(cobra.NoArgs),
		RunE: showHelp,
	}
	var listJSON bool
	list := &cobra.Command{
		Use:     "list",
		Short:   "List providers with a stored key and its fingerprint (never the key)",
		Example: "  thesystem keys list\n  thesystem keys list --json",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return keysListAction(cmd.Context(), env, listJSON)
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON")
	cmd.AddCommand(
		&cobra.Command{
			Use:   "set <provider> [key]",
			Short: "Store a provider's key (read from a no-echo prompt or stdin)",
			Long: `Store a provider's key in the OS key store. The key is read from a
prompt that does not echo, or from stdin when it is not a terminal. Giving
it as an argument works but puts it in your shell history, so it is warned
about. The key's shape is checked against the provider's.`,
			Example: `  thesystem keys set anthropic
  thesystem keys set openai < key.txt`,
			Args: usageArgs(cobra.RangeArgs(1, 2)),
			RunE: func(cmd *cobra.Command, args []string) error {
				return keysSetAction(cmd.Context(), env, args, false)
			},
		},
		&cobra.Command{
			Use:   "get <provider>",
			Short: "Print a provider's key (only to a terminal, after confirmation)",
			Long: `Print a stored key. Only to a terminal, and only after you confirm; never
to a pipe or a file, and never over the engine's API.`,
			Example: `  thesystem keys get anthropic`,
			Args:    usageArgs(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, args []string) error {
				return keysGetAction(cmd.Context(), env, args[0])
			},
		},
		list,
		&cobra.Command{
			Use:     "delete <provider>",
			Short:   "Delete a provider's key",
			Example: `  thesystem keys delete openai`,
			Args:    usageArgs(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, args []string) error {
				return keysDeleteAction(cmd.Context(), env, args[0])
			},
		},
		newKeysRotateCommand(env),
	)
	return cmd
}

func newKeysRotateCommand(env *Env) *cobra.Command {
	var tokens bool
	cmd := &cobra.Command{
		Use:   "rotate [provider]",
		Short: "Store a new key and hot-swap it into the running proxy, or re-issue agent tokens",
		Long: `With a provider: read a new key (as 'keys set' does), store it, and make
the running proxy load it without dropping requests in flight.
With --tokens: revoke every agent's token and issue new ones.`,
		Example: `  thesystem keys rotate anthropic   # new key, no dropped requests
  thesystem keys rotate --tokens    # revoke and re-issue every agent token`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case tokens && len(args) > 0:
				return usagef("give either a provider or --tokens, not both")
			case !tokens && len(args) == 0:
				return usagef("name the provider whose key to rotate, or give --tokens")
			case tokens:
				n, err := env.client().RotateTokens(cmd.Context())
				if errors.Is(err, api.ErrNoDaemon) {
					return errors.New("the engine is not running: agent tokens exist only while it runs (and are new at each start)")
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "revoked and re-issued %d agent token(s)\n", n)
				return nil
			}
			return keysSetAction(cmd.Context(), env, args, true)
		},
	}
	cmd.Flags().BoolVar(&tokens, "tokens", false, "revoke and re-issue every agent token")
	return cmd
}

// keyService is the key store's service name; THESYSTEM_KEYRING_SERVICE
// lets tests use their own.
func keyService(env *Env) string {
	if s, _ := env.lookup("THESYSTEM_KEYRING_SERVICE"); s != "" {
		return s
	}
	return secrets.DefaultService
}

func openStore(ctx context.Context, env *Env) (secrets.Store, error) {
	return secrets.Open(ctx, keyService(env))
}

func parseProvider(name string) (provider.Provider, error) {
	p, err := provider.Parse(name)
	if err != nil {
		return provider.Provider{}, &usageError{err}
	}
	return p, nil
}

func isTerminal(v any) (int, bool) {
	f, ok := v.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

// readKey takes the key from the argument (warned about), a no-echo
// prompt, or stdin.
func readKey(env *Env, p provider.Provider, args []string) (string, error) {
	if len(args) == 2 {
		fmt.Fprintln(env.Stderr, "warning: a key on the command line lands in your shell history and the process list; "+
			"next time let `thesystem keys set <provider>` prompt for it or read it from stdin")
		return args[1], nil
	}
	if fd, ok := isTerminal(env.Stdin); ok {
		// No echo from before the prompt: a key typed or pasted ahead of
		// it is not shown either.
		if restore, err := echoOff(fd); err == nil {
			defer restore()
		}
		fmt.Fprintf(env.Stderr, "%s API key (input hidden): ", p.Name)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return "", fmt.Errorf("read key: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	b, err := io.ReadAll(io.LimitReader(env.Stdin, 8<<10))
	if err != nil {
		return "", fmt.Errorf("read key from stdin: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func keysSetAction(ctx context.Context, env *Env, args []string, rotate bool) error {
	p, err := parseProvider(args[0])
	if err != nil {
		return err
	}
	// A running engine holds the key store: through it no D-Bus session of
	// the caller's is needed (a headless `make run` has its own).
	c := env.client()
	var oldFP string
	if rotate {
		if oldFP, err = storedFingerprint(ctx, env, p.Name); err != nil {
			return err
		}
		if oldFP == "" {
			return fmt.Errorf("no %s key is stored, nothing to rotate: use `thesystem keys set %s`", p.Name, p.Name)
		}
	}
	k, err := readKey(env, p, args)
	if err != nil {
		return err
	}
	switch {
	case k == "":
		return usagef("no key given: type it at the prompt or pipe it on stdin")
	case strings.HasPrefix(k, "tsu_") || strings.HasPrefix(k, "tsa_"):
		return usagef("that is a TheSystem proxy token, not a %s key", p.Name)
	}
	if err := p.CheckKey(k); err != nil {
		return &usageError{err}
	}
	key := secrets.NewKey(k)
	if rotate && key.Fingerprint() == oldFP {
		return usagef("that is the key already stored for %s", p.Name)
	}
	// With the engine running, it stores the key and hot-swaps it in.
	info, err := c.SetKey(ctx, p.Name, k)
	switch {
	case err == nil:
		fmt.Fprintf(env.Stdout, "stored the %s key (%s) and hot-swapped it into the running engine\n", p.Name, info.Fingerprint)
		return nil
	case !errors.Is(err, api.ErrNoDaemon):
		return err
	}
	store, err := openStore(ctx, env)
	if err != nil {
		return err
	}
	if err := store.Set(ctx, p.Name, key); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "stored the %s key (%s) in the OS key store\n", p.Name, key.Fingerprint())
	return notifyProxy(ctx, env)
}

// storedKeys are the stored keys' fingerprints: from the running engine,
// else from the key store itself.
func storedKeys(ctx context.Context, env *Env) ([]api.KeyInfo, error) {
	infos, err := env.client().Keys(ctx)
	if !errors.Is(err, api.ErrNoDaemon) {
		return infos, err
	}
	store, err := openStore(ctx, env)
	if err != nil {
		return nil, err
	}
	keys, err := secrets.LoadAll(ctx, store)
	if err != nil {
		return nil, err
	}
	infos = []api.KeyInfo{}
	for _, name := range slices.Sorted(maps.Keys(keys)) {
		infos = append(infos, api.KeyInfo{Provider: name, Fingerprint: keys[name].Fingerprint()})
	}
	return infos, nil
}

// storedFingerprint is the fingerprint of provider's stored key, "" if none.
func storedFingerprint(ctx context.Context, env *Env, provider string) (string, error) {
	infos, err := storedKeys(ctx, env)
	for _, i := range infos {
		if i.Provider == provider {
			return i.Fingerprint, nil
		}
	}
	return "", err
}

// notifyProxy asks a foreground proxy (`thesystem proxy`) to reload its
// keys over its control socket, so a new key is hot-swapped in without
// dropping requests in flight. No signal is sent to anyone: a pid read
// from a file may be a stranger's by now.
func notifyProxy(ctx context.Context, env *Env) error {
	sock := env.paths().ProxyControlSocket()
	c, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "unix", sock)
	if err != nil {
		fmt.Fprintln(env.Stdout, "no proxy is running; it loads the key when it starts")
		return nil //nolint:nilerr // no proxy to tell is not a failure of storing the key
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "reload\n"); err != nil {
		return fmt.Errorf("ask the proxy to reload: %w", err)
	}
	line, err := bufio.NewReader(io.LimitReader(c, 4<<10)).ReadString('\n')
	if err != nil {
		return fmt.Errorf("the proxy's answer to the reload: %w", err)
	}
	if backends, ok := strings.CutPrefix(strings.TrimSpace(line), "ok"); ok {
		fmt.Fprintf(env.Stdout, "hot-swapped into the running proxy (keys for: %s)\n", strings.TrimSpace(backends))
		return nil
	}
	return fmt.Errorf("the running proxy could not reload its keys: %s", strings.TrimPrefix(strings.TrimSpace(line), "error "))
}

func keysGetAction(ctx context.Context, env *Env, name string) error {
	p, err := parseProvider(name)
	if err != nil {
		return err
	}
	if _, ok := isTerminal(env.Stdout); !ok {
		return errors.New("refusing to print a key to a pipe or a file: run `thesystem keys get` in a terminal")
	}
	if _, ok := isTerminal(env.Stdin); !ok {
		return errors.New("refusing to print a key without confirmation from a terminal")
	}
	store, err := openStore(ctx, env)
	if err != nil {
		return err
	}
	key, err := store.Get(ctx, p.Name)
	if errors.Is(err, secrets.ErrNotFound) {
		return fmt.Errorf("no %s key is stored", p.Name)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "Print the %s key (%s) on this terminal? [y/N] ", p.Name, key.Fingerprint())
	answer, _ := bufio.NewReader(env.Stdin).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return errors.New("not confirmed; nothing printed")
	}
	fmt.Fprintln(env.Stdout, key.Reveal())
	return nil
}

func keysListAction(ctx context.Context, env *Env, asJSON bool) error {
	entries, err := storedKeys(ctx, env)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSONTo(env.Stdout, entries)
	}
	if len(entries) == 0 {
		fmt.Fprintln(env.Stdout, "no keys stored: run `thesystem keys set <provider>`")
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tFINGERPRINT")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\n", e.Provider, e.Fingerprint)
	}
	return tw.Flush()
}

func keysDeleteAction(ctx context.Context, env *Env, name string) error {
	p, err := parseProvider(name)
	if err != nil {
		return err
	}
	switch err := env.client().DeleteKey(ctx, p.Name); {
	case err == nil:
		fmt.Fprintf(env.Stdout, "deleted the %s key; the running engine no longer uses it\n", p.Name)
		return nil
	case errors.Is(err, api.ErrNotFound):
		return fmt.Errorf("no %s key is stored", p.Name)
	case !errors.Is(err, api.ErrNoDaemon):
		return err
	}
	store, err := openStore(ctx, env)
	if err != nil {
		return err
	}
	if err := store.Delete(ctx, p.Name); errors.Is(err, secrets.ErrNotFound) {
		return fmt.Errorf("no %s key is stored", p.Name)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "deleted the %s key\n", p.Name)
	return notifyProxy(ctx, env)
}
