package cli

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/config"
)

func newDestroyCommand(env *Env, g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Stop everything and delete what the stack built, workspaces included",
		Long: `Stop the stack, then delete everything it built: the containers, the agents'
workspace volumes, the images and the installed runtimes (and, with
vm.driver lima, the VM). Keys (in the OS key store), thesystem.yaml, the
audit log and the chat's history are kept; 'thesystem start' rebuilds the rest from the
configuration. Asks for confirmation unless --yes is given.`,
		Example: `  thesystem destroy
  thesystem destroy --yes   # no confirmation prompt`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := loadConfig(env, g)
			if err != nil {
				return err
			}
			if !yes {
				if _, ok := isTerminal(env.Stdin); !ok {
					return usagef("destroy deletes the agents' workspaces: confirm with --yes")
				}
				what := "the containers, images and the agents' workspaces"
				if l.Config.VM.Driver == config.DriverLima {
					what = "the VM, with the containers, images and the agents' workspaces in it"
				}
				fmt.Fprintf(env.Stderr, "Delete %s? [y/N] ", what)
				answer, _ := bufio.NewReader(env.Stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return errors.New("not confirmed; nothing deleted")
				}
			}
			c, err := ensureDaemon(cmd.Context(), env, l)
			if err != nil {
				return err
			}
			if err := c.Destroy(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, "destroyed; run `thesystem start` to rebuild")
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}
