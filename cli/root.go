// Package cli is the `thesystem` command line: one cobra command per file,
// each a thin shell that parses flags, calls the engine (through the local
// API client once the daemon exists, or the small engine packages config and
// compat), and prints the result as text or --json.
//
// Exit codes: 0 ok, 1 error, 2 misconfiguration or misuse.
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

	"github.com/thesystem-dev/thesystem/engine/config"
)

// Build describes the binary; app/main sets it from the linker flags.
type Build struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
}

// Env is everything a command may touch of the outside world, so tests can
// run the real command tree against pipes and a fake environment.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// LookupEnv reads an environment variable; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Getwd returns the working directory; nil means os.Getwd.
	Getwd func() (string, error)
	Build Build
	// Set by the composition root: the engine's parts the CLI runs
	// in-process.
	RunProxy     ProxyRunner
	RunDaemon    DaemonRunner
	Doctor       DoctorRunner
	RunInit      InitRunner
	RunChat      ChatRunner
	RunAgent     AgentRunner
	RunDashboard DashboardRunner
	RunApp       AppRunner
	// BuildGuestImage builds the agents' image inside the VM.
	BuildGuestImage GuestImageBuilder
	LoginItem       LoginItemFactory
}

func (e *Env) lookup(k string) (string, bool) {
	if e.LookupEnv == nil {
		return os.LookupEnv(k)
	}
	return e.LookupEnv(k)
}

func (e *Env) getwd() (string, error) {
	if e.Getwd == nil {
		return os.Getwd()
	}
	return e.Getwd()
}

// globals are the persistent flags every command shares.
type globals struct {
	configPath string
	loaded     *config.Loaded // what loadConfig read, once per process
}

// Run executes the command line args and returns the process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	root := NewRootCommand(&env)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var status exitStatus
	if errors.As(err, &status) {
		return int(status)
	}
	code := exitCode(err)
	fmt.Fprintf(env.Stderr, "thesystem: %v\n", err)
	var uerr *usageError
	if errors.As(err, &uerr) && cmd != nil {
		fmt.Fprintf(env.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// NewRootCommand builds the whole command tree around env.
func NewRootCommand(env *Env) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "thesystem",
		Short: "Run a team of AI coding agents on your own machine, safely",
		Long: `TheSystem runs N AI coding agents on this machine behind a trust boundary:
API keys stay in the OS key store and in the host's key proxy (agentauth),
agents run one per container with no network and only a revocable token,
and the chat server and dashboard live in an expendable VM.`,
		Example: `  thesystem init            # write a commented thesystem.yaml
  thesystem keys set anthropic
  thesystem start           # bring up proxy, VM, chat, dashboard, agents
  thesystem status`,
		Args:          usageArgs(cobra.NoArgs),
		RunE:          showHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.PersistentFlags().StringVar(&g.configPath, "config", "",
		"path to thesystem.yaml (default: $THESYSTEM_CONFIG, else discovered from the working directory up to the git root)")
	root.CompletionOptions.HiddenDefaultCmd = true
	// A --config given is read by every command, even one that only talks
	// to the running engine: a wrong path or a broken file is said (with
	// its file and line), never silently ignored.
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if f := cmd.Flag("config"); f == nil || !f.Changed {
			return nil
		}
		if cmd.Name() == "init" {
			return &usageError{errors.New("--config names a thesystem.yaml to read; init writes one: use --dir")}
		}
		_, err := loadConfig(env, g)
		return err
	}

	root.AddCommand(
		newInitCommand(env),
		newStartCommand(env, g),
		newStopCommand(env),
		newStatusCommand(env),
		newUsageCommand(env),
		newDestroyCommand(env, g),
		newDoctorCommand(env, g),
		newLogsCommand(env),
		newConfigCommand(env, g),
		newVersionCommand(env),
		newReinstallCommand(env),
		newRestartCommand(env),
		newKeysCommand(env),
		newProxyCommand(env, g),
		newDaemonCommand(env, g),
		newSandboxInitCommand(env),
		newSandboxAgentCommand(env),
		newGuestImageCommand(env),
		newChatCommand(env, g),
		newDashboardCommand(env),
		newAgentsCommand(env),
		newAppCommand(env, g),
		newLoginItemCommand(env, g),
		newInstallCLICommand(env),
	)
	return root
}

// displayPath shows p relative to the working directory when it is below
// it or in one of its ancestors (../../thesystem.yaml), else absolute.
func displayPath(env *Env, p string) string {
	wd, err := env.getwd()
	if err != nil {
		return p
	}
	rel, err := filepath.Rel(wd, p)
	if err != nil {
		return p
	}
	if !strings.HasPrefix(rel, "..") {
		return rel
	}
	for _, part := range strings.Split(filepath.Dir(rel), string(filepath.Separator)) {
		if part != ".." {
			return p // beside an ancestor, not in it
		}
	}
	return rel
}

// showHelp is the action of commands that only group others: with no
// arguments it prints help; an unknown subcommand fails the Args check first.
func showHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }
