package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/compat"
)

func newStartCommand(env *Env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "start",
		Short: "Bring the whole stack up in dependency order",
		Long: `Start everything, each step gated on the health of the one before:
the key proxy, the VM (or host podman with vm.driver: none), the chat
server, the dashboard and the agents. Starts the engine daemon if none runs
and shows each component's progress. The configuration and the
compatibility matrix are checked first; a problem there stops the start
before anything runs. A component that does not come up rolls the start
back and is named, with its last log lines.`,
		Example: `  thesystem start
  thesystem start --config ./thesystem.yaml`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return startAction(cmd.Context(), env, g)
		},
	}
}

func startAction(ctx context.Context, env *Env, g *globals) error {
	l, err := loadConfig(env, g)
	if err != nil {
		return err
	}
	results, err := compat.Default(env.Build.Version).CheckAll(nil)
	if err != nil {
		return err
	}
	if blocked := compat.Blocking(results); len(blocked) > 0 {
		var b strings.Builder
		for _, r := range blocked {
			fmt.Fprintf(&b, "\n  %s: %s; %s", r.Component, r.Problem, r.Suggestion)
		}
		return fmt.Errorf("incompatible components, start refused:%s", b.String())
	}
	c, err := ensureDaemon(ctx, env, l)
	if err != nil {
		return err
	}
	// Show each component's progress while the engine starts them, and
	// when each came up (or gave up): where a slow start spent its time.
	began := time.Now()
	evCtx, stopEvents := context.WithCancel(ctx)
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		last := map[string]string{}
		_ = c.Events(evCtx, func(st api.Status) bool {
			for _, comp := range st.Components {
				line := comp.State
				if comp.Detail != "" {
					line += ": " + comp.Detail
				}
				if last[comp.Name] != line && comp.State != api.StateStopped {
					at := ""
					if comp.State != api.StateStarting {
						at = fmt.Sprintf("  +%s", time.Since(began).Round(100*time.Millisecond))
					}
					fmt.Fprintf(env.Stderr, "  %-18s %s%s\n", comp.Name, line, at)
				}
				last[comp.Name] = line
			}
			return true
		})
	}()
	err = c.Start(ctx)
	time.Sleep(50 * time.Millisecond) // let the last transitions print
	stopEvents()
	<-followed
	if err != nil {
		if st, serr := c.Status(ctx); serr == nil {
			printStatus(env.Stderr, st)
		}
		return err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "started in %s\n", time.Since(began).Round(time.Millisecond))
	printStatus(env.Stdout, st)
	return nil
}
