package cli

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/config"
)

// ProxyRunner runs the key proxy in the foreground until ctx ends. The
// composition root (app) provides it, so the CLI never imports the engine's
// internals.
type ProxyRunner func(ctx context.Context, l *config.Loaded, paths config.Paths, keyService string, out io.Writer) error

func newProxyCommand(env *Env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "proxy",
		Short: "Run the key proxy (agentauth) in the foreground",
		Long: `Run agentauth, the key proxy, in the foreground: it loads the keys from the
OS key store once, serves 127.0.0.1:<proxy.port> for your own tools and a
unix socket for the sandboxes, and writes a fresh user token (0600) to the
state dir. Point a tool at it with <PROVIDER>_BASE_URL=http://127.0.0.1:9999/<provider>
and the token as its API key. 'thesystem keys set|rotate' (over its control socket) or SIGHUP reload the
keys; Ctrl-C stops it and cuts every client off.`,
		Example: `  thesystem proxy
  ANTHROPIC_BASE_URL=http://127.0.0.1:9999/anthropic \
  ANTHROPIC_API_KEY=$(cat ~/.local/state/thesystem/agentauth.token) claude -p hi`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := loadConfig(env, g)
			if err != nil {
				return err
			}
			if env.RunProxy == nil {
				return notYet("the proxy in this build", 3)
			}
			return env.RunProxy(cmd.Context(), l, env.paths(), keyService(env), env.Stdout)
		},
	}
}
