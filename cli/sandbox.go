package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/webguard"
)

// InitRunner is the in-container init; it returns the runtime's exit
// status.
type InitRunner func(ctx context.Context, socketDir, chatSocket, tokenFile, proxyAddr, chatAddr string, argv []string) (int, error)

// ChatServe is what `chat serve` was asked for.
type ChatServe struct {
	Listen, Socket string
	Channels       []string
	// Guard says which Hosts and browser origins it takes.
	Guard webguard.Guard
	// Allow, when not nil, are the only identities admitted: name → the
	// base64 Ed25519 public key that proves it.
	Allow map[string]string
	// Observers get a copy of every direct message (verified only).
	Observers []string
	// Admins may admit and revoke identities while it runs (verified only).
	Admins []string
}

// ChatRunner serves the embedded chat server.
type ChatRunner func(ctx context.Context, opt ChatServe, out io.Writer) error

// exitStatus ends the process with a status and no message: the init
// passes on its child's.
type exitStatus int

func (e exitStatus) Error() string { return "exit status" }

func newSandboxInitCommand(env *Env) *cobra.Command {
	var socketDir, chatSocket, tokenFile, proxyAddr, chatAddr string
	cmd := &cobra.Command{
		Use:    "sandbox-init [flags] -- <runtime> [args...]",
		Short:  "PID 1 of an agent container: relays the proxy and chat sockets, runs the runtime",
		Hidden: true,
		Long: `The in-container init (bind-mounted read-only into every agent container
as PID 1): relays 127.0.0.1:9999 and 127.0.0.1:6667 to the proxy and chat
sockets in the socket directory, runs the agent runtime as its only child
with the proxy URLs and the agent's token (read from --token-file) in
its environment, reaps zombies, forwards signals, and exits with the
runtime's status.`,
		Example: `  thesystem sandbox-init -- claude -p "fix the tests"`,
		Args:    usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if env.RunInit == nil {
				return errors.New("this build has no sandbox init")
			}
			code, err := env.RunInit(cmd.Context(), socketDir, chatSocket, tokenFile, proxyAddr, chatAddr, args)
			if err != nil {
				return err
			}
			return exitStatus(code)
		},
	}
	cmd.Flags().StringVar(&socketDir, "socket-dir", "/run/thesystem/sockets", "directory with agentauth.sock")
	cmd.Flags().StringVar(&chatSocket, "chat-socket", "/run/thesystem/services/chat.sock", "the chat server's socket")
	cmd.Flags().StringVar(&tokenFile, "token-file", "/run/thesystem/agent/token", "the agent's proxy token")
	cmd.Flags().StringVar(&proxyAddr, "proxy-addr", "127.0.0.1:9999", "where the agent finds the proxy")
	cmd.Flags().StringVar(&chatAddr, "chat-addr", "127.0.0.1:6667", "where the agent finds the chat server")
	return cmd
}

func newChatCommand(env *Env, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "chat",
		Short:   "The team's chat: read it, say something, or serve it",
		Example: "  thesystem chat tail -f\n  thesystem chat send '#general' '@agent-1 add a test for the parser'\n  thesystem chat send agent-2 'what are you working on?'",
		Args:    usageArgs(cobra.NoArgs),
		RunE:    showHelp,
	}
	var listen, socket string
	var channels, origins, allow, observers, admins []string
	var ports []int
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve the chat server (HTTP + WebSocket) on a TCP address and a unix socket",
		Long: `Serve the embedded chat server, which speaks the agentchat protocol subset
TheSystem's agents and dashboard use, with the channels of thesystem.yaml.
It runs as a container of the stack; run it by hand to try a client.
Requests from web pages (an Origin header) are refused unless --allow-origin
names it, and so is a Host that is not this machine's loopback at an
--allow-port (DNS rebinding).`,
		Example: `  thesystem chat serve --listen 127.0.0.1:6667
  thesystem chat serve --socket /run/thesystem/chat.sock --allow-port 6667 --allow-origin http://127.0.0.1:3000`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := loadConfig(env, g)
			if err != nil {
				return err
			}
			if listen == "" && socket == "" {
				return usagef("give --listen, --socket or both")
			}
			if env.RunChat == nil {
				return errors.New("this build has no chat server")
			}
			chans := l.Config.Channels
			if len(channels) > 0 {
				chans = channels
			}
			opt := ChatServe{Listen: listen, Socket: socket, Channels: chans, Guard: webguard.Guard{Ports: ports, Origins: origins}, Observers: observers, Admins: admins}
			for _, a := range allow {
				name, key, ok := strings.Cut(a, "=")
				if !ok || name == "" || key == "" {
					return usagef("--allow takes name=<base64 public key>")
				}
				if opt.Allow == nil {
					opt.Allow = map[string]string{}
				}
				opt.Allow[name] = key
			}
			return env.RunChat(cmd.Context(), opt, env.Stdout)
		},
	}
	serve.Flags().StringVar(&listen, "listen", "", "TCP address, e.g. 127.0.0.1:6667")
	serve.Flags().StringVar(&socket, "socket", "", "unix socket path")
	serve.Flags().StringSliceVar(&channels, "channels", nil, "channels (default: thesystem.yaml's)")
	serve.Flags().IntSliceVar(&ports, "allow-port", nil, "the ports clients reach it at (the Host header's; default any)")
	serve.Flags().StringSliceVar(&origins, "allow-origin", nil, "a browser origin allowed to connect, e.g. http://127.0.0.1:3000 (default none)")
	serve.Flags().StringArrayVar(&allow, "allow", nil, "admit only these identities: name=<base64 Ed25519 public key>, repeated (default: anyone)")
	serve.Flags().StringArrayVar(&observers, "observer", nil, "a verified identity that gets a copy of every direct message, repeated")
	serve.Flags().StringArrayVar(&admins, "admin", nil, "a verified identity that may admit and revoke others while the server runs, repeated")
	cmd.AddCommand(serve, newChatTailCommand(env), newChatSendCommand(env))
	return cmd
}

// AgentRun is what `sandbox-agent` was asked for.
type AgentRun struct {
	Name string
	// Identity is the file of its chat key ("" for an ephemeral identity).
	Identity string
	Channels []string
	// Mission is prepended to every prompt (a runtime without a system
	// prompt of its own).
	Mission string
	// Session is the file that keeps the runtime's conversation id, so each
	// task continues the conversation ("" for none).
	Session string
	// Ask: the runtime asks before it edits or runs anything (which in -p
	// mode means it cannot): each answer says so.
	Ask bool
	// MaxHops bounds the tasks taken from other agents in a row.
	MaxHops int
	// Project, when set, is the read-only project the agent's working copy
	// (on its own branch, in the workspace) is made from.
	Project string
	// Runtime is how the runtime is run and read: claude or codex.
	Runtime string
	Argv    []string
}

// AgentRunner is an agent's chat loop inside its container.
type AgentRunner func(ctx context.Context, run AgentRun) error

func newSandboxAgentCommand(env *Env) *cobra.Command {
	var run AgentRun
	var missionFile string
	cmd := &cobra.Command{
		Use:    "sandbox-agent [flags] -- <runtime> [args...]",
		Short:  "An agent's chat loop: answer mentions by running the runtime once per task",
		Hidden: true,
		Long: `Runs inside an agent container as the init's child: connects to the chat
server at $AGENTCHAT_URL as --name, joins --channels, and for each message
that mentions @name (or is sent to it directly) runs the runtime with the
mission and the message appended as the last argument (a long one in a
file), continuing the conversation with --session-file, then posts the
answer back. A direct message "/reset" from the user starts a new
conversation.`,
		Example: `  thesystem sandbox-agent --name agent-1 --channels '#agents' -- claude -p`,
		Args:    usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if env.RunAgent == nil {
				return errors.New("this build has no agent runner")
			}
			if run.Runtime != "claude" && run.Runtime != "codex" {
				return usagef("--runtime %q: claude or codex", run.Runtime)
			}
			if missionFile != "" {
				b, err := os.ReadFile(missionFile)
				if err != nil {
					return fmt.Errorf("mission: %w", err)
				}
				run.Mission = string(b)
			}
			run.Argv = args
			return env.RunAgent(cmd.Context(), run)
		},
	}
	cmd.Flags().StringVar(&run.Name, "name", "", "the agent's chat name")
	cmd.Flags().StringVar(&run.Identity, "identity", "", "the agent's chat key (PEM), to prove its name")
	cmd.Flags().StringSliceVar(&run.Channels, "channels", []string{"#general"}, "channels to join")
	cmd.Flags().StringVar(&run.Mission, "mission", "", "the mission, prepended to every prompt")
	cmd.Flags().StringVar(&run.Session, "session-file", "", "keep the runtime's conversation id here: each task continues it (claude's --session-id/--resume)")
	cmd.Flags().BoolVar(&run.Ask, "ask", false, "the runtime asks before editing or running anything: say so in each answer")
	cmd.Flags().StringVar(&run.Project, "project", "", "make the agent's working copy of this read-only project (a clone on branch thesystem/<name>) and work in it")
	cmd.Flags().IntVar(&run.MaxHops, "max-hops", 8, "take at most this many tasks in a row from other agents, with none from a person")
	cmd.Flags().StringVar(&missionFile, "mission-file", "", "read the mission from this file")
	cmd.Flags().StringVar(&run.Runtime, "runtime", "claude", "how the runtime runs: claude (-p --output-format stream-json, --session-id/--resume) or codex (exec --json, resume)")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// GuestImageBuild is what `guest-image` was asked for.
type GuestImageBuild struct {
	// Runtimes are the agents' runtimes, each "COMMAND@VERSION=FILE" (the
	// pinned npm package of that runtime's release) or "COMMAND=FILE" (a
	// linux binary).
	Runtimes []string
	UID, GID int
	// PodmanSocket is the podman service the image goes into.
	PodmanSocket string
	// Install installs packages the system lacks (apt-get).
	Install bool
}

// GuestImageBuilder builds the agents' image from this system's own
// packages and says its name.
type GuestImageBuilder func(ctx context.Context, opt GuestImageBuild, log io.Writer) (string, error)

func newGuestImageCommand(env *Env) *cobra.Command {
	var opt GuestImageBuild
	cmd := &cobra.Command{
		Use:    "guest-image --runtime COMMAND[@VERSION]=FILE…",
		Short:  "Build the agents' image from this system's own packages (run inside the VM)",
		Hidden: true,
		Long: `Runs inside TheSystem's VM, as root, when the stack starts: builds the
agents' development image from the packages this system has installed
(dpkg: bash, coreutils, git, ripgrep… and what they depend on) and the
runtimes staged into the VM (claude-code's and codex's linux packages for
this architecture, checked against the integrity this release pins),
unless an image of the same packages and runtimes exists; prints the
image's name. Progress goes to stderr.`,
		Example: `  thesystem guest-image --runtime claude@2.1.330=/var/lib/thesystem/runtimes/claude-code-linux-arm64-2.1.330-….tgz \
    --runtime codex@0.171.0-linux-arm64=/var/lib/thesystem/runtimes/codex-0.171.0-linux-arm64-….tgz`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if env.BuildGuestImage == nil {
				return errors.New("this build cannot build the agents' image")
			}
			ref, err := env.BuildGuestImage(cmd.Context(), opt, env.Stderr)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, ref)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&opt.Runtimes, "runtime", nil, "a runtime, COMMAND@VERSION=FILE (its npm package's tarball) or COMMAND=FILE (a linux binary); repeatable")
	cmd.Flags().IntVar(&opt.UID, "uid", 1000, "the agent user's uid")
	cmd.Flags().IntVar(&opt.GID, "gid", 1000, "the agent user's gid")
	cmd.Flags().StringVar(&opt.PodmanSocket, "podman-socket", "/run/podman/podman.sock", "the podman service the image goes into")
	cmd.Flags().BoolVar(&opt.Install, "install-missing", false, "apt-get install packages this system lacks")
	_ = cmd.MarkFlagRequired("runtime")
	return cmd
}

// DashboardServe is what `dashboard serve` was asked for.
type DashboardServe struct {
	// ChatURL is the chat server; ChatSocket, when set, is dialed instead.
	ChatURL, ChatSocket string
	// Identity is the file of the dashboard's chat key ("" for an
	// ephemeral identity).
	Identity string
	// KeyFile holds the key a browser must show (once, in the URL; then
	// in a cookie) to see anything; "" serves anyone who reaches it.
	KeyFile string
	// Listen and Socket are where it serves; Ports the loopback ports its
	// page is reached at (any when none), from no other web page.
	Listen, Socket string
	Ports          []int
}

// DashboardRunner serves the dashboard, fed by the chat server.
type DashboardRunner func(ctx context.Context, opt DashboardServe) error

func newDashboardCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "dashboard",
		Short:   "The read-only live dashboard",
		Example: "  thesystem dashboard serve --chat-url ws://127.0.0.1:6667 --listen 127.0.0.1:3000",
		Args:    usageArgs(cobra.NoArgs),
		RunE:    showHelp,
	}
	var opt DashboardServe
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve the dashboard, following the chat server",
		Long: `Serve the read-only dashboard (channels, messages, agents, health; GET
/api/health answers {"status":"ok","connected":bool}). It runs as a
container of the stack; run it by hand against any agentchat server.`,
		Example: `  thesystem dashboard serve --chat-url ws://127.0.0.1:6667 --listen 127.0.0.1:3000`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opt.Listen == "" && opt.Socket == "" {
				return usagef("give --listen, --socket or both")
			}
			if env.RunDashboard == nil {
				return errors.New("this build has no dashboard")
			}
			return env.RunDashboard(cmd.Context(), opt)
		},
	}
	serve.Flags().StringVar(&opt.ChatURL, "chat-url", "ws://127.0.0.1:6667", "the chat server (default $AGENTCHAT_URL)")
	serve.Flags().StringVar(&opt.ChatSocket, "chat-socket", "", "reach the chat server through this unix socket")
	serve.Flags().StringVar(&opt.Identity, "identity", "", "the dashboard's chat key (PEM), to prove its name")
	serve.Flags().StringVar(&opt.KeyFile, "key-file", "", "a file with the key a browser must show (?key=…, then a cookie); default: none needed")
	serve.Flags().StringVar(&opt.Listen, "listen", "", "TCP address, e.g. 127.0.0.1:3000")
	serve.Flags().StringVar(&opt.Socket, "socket", "", "unix socket path")
	serve.Flags().IntSliceVar(&opt.Ports, "allow-port", nil, "the ports the page is reached at (the Host header's; default any)")
	cmd.AddCommand(serve, newDashboardURLCommand(env, false), newDashboardURLCommand(env, true))
	return cmd
}
