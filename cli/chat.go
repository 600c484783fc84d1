package cli

import (
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/api"
)

func newChatTailCommand(env *Env) *cobra.Command {
	var (
		follow bool
		n      int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "tail [#channel]",
		Short: "Show the team chat's recent messages, direct messages included",
		Long: `Show what was said in the team's chat while the engine ran: every channel,
and every direct message to or between agents (nothing said to an agent is
hidden from you); with a #channel, only what was said there. -f follows new
messages as they come.`,
		Example: `  thesystem chat tail
  thesystem chat tail -f '#general'
  thesystem chat tail -n 500 --json`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n < 0 {
				return usagef("-n must be 0 or more, got %d", n)
			}
			channel := ""
			if len(args) == 1 {
				if channel = args[0]; !strings.HasPrefix(channel, "#") || len(channel) < 2 {
					return usagef("%q is not a channel: give one as #name (quoted in a shell: '#general')", channel)
				}
			}
			print := func(m api.ChatMessage) bool {
				if asJSON {
					_ = writeJSONLine(env.Stdout, m)
					return true
				}
				printChat(env.Stdout, m)
				return true
			}
			c := env.client()
			if follow {
				return c.FollowChat(cmd.Context(), channel, n, print)
			}
			msgs, err := c.Chat(cmd.Context(), channel, n)
			if err != nil {
				return err
			}
			if len(msgs) == 0 && !asJSON && n > 0 {
				fmt.Fprintln(env.Stderr, "no messages: the engine keeps what was said while the chat ran, since the engine started (is the stack up? `thesystem status`)")
			}
			for _, m := range msgs {
				print(m)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow new messages")
	cmd.Flags().IntVarP(&n, "lines", "n", 50, "how many recent messages to show")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines")
	return cmd
}

// printChat prints a message as `15:04:05 #general  user: text`, a direct
// one as `15:04:05 user → agent-1: text`; continuation lines indented.
func printChat(w io.Writer, m api.ChatMessage) {
	// Names and text are the senders' to choose: no control character
	// reaches the terminal (see printable).
	from, to := printable(m.From), printable(m.To)
	where := fmt.Sprintf("%-10s %s", to, from)
	if m.Direct {
		where = fmt.Sprintf("%s → %s", from, to)
	}
	text := strings.ReplaceAll(printable(strings.TrimRight(m.Content, "\n")), "\n", "\n    ")
	fmt.Fprintf(w, "%s %s: %s\n", m.Time.Local().Format("15:04:05"), where, text)
}

func newChatSendCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "send <#channel|agent> [message...]",
		Short: "Say something in the team's chat, as you",
		Long: `Say something in a channel, or to one agent directly. A message in a
channel that mentions an agent (@agent-1) is a task for it; a direct message
always is. Without a message on the command line it is read from standard
input (up to 2 MiB; also with - as the message), so a long task can come
from a file.`,
		Example: `  thesystem chat send '#general' '@agent-1 add a test for the parser'
  thesystem chat send agent-2 'what are you working on?'
  thesystem chat send agent-1 < task.md
  git diff | thesystem chat send '#general' -`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			to, text := args[0], strings.Join(args[1:], " ")
			if len(args) == 1 || len(args) == 2 && args[1] == "-" {
				b, err := io.ReadAll(io.LimitReader(env.Stdin, maxChatStdin+1))
				if err != nil {
					return fmt.Errorf("read the message from standard input: %w", err)
				}
				if len(b) > maxChatStdin {
					return usagef("the message on standard input is over %d bytes, the most the chat takes", maxChatStdin)
				}
				text = string(b)
			}
			if strings.TrimSpace(text) == "" {
				return usagef("nothing to say: give a message after %s, or on standard input", to)
			}
			if err := env.client().ChatSend(cmd.Context(), to, text); err != nil {
				return err
			}
			fmt.Fprintf(env.Stderr, "sent to %s\n", to)
			return nil
		},
	}
}

// maxChatStdin is the most the chat takes in one message.
const maxChatStdin = 2 << 20

func newDashboardURLCommand(env *Env, open bool) *cobra.Command {
	use, short, long := "url", "Print the dashboard's address with its key", `Print the dashboard's address with the key that lets a browser in
(?key=…; the browser keeps it in a cookie). The dashboard listens on the
loopback, which every local account reaches too: it shows nothing without
the key, which only you can read (thesystem's state dir, 0600).`
	if open {
		use, short, long = "open", "Open the dashboard in the browser", `Open the dashboard in the desktop's browser, through a page only you
can read that sends the browser to the address with its key (a URL on a
command line is visible to every local account in the process list).`
	}
	return &cobra.Command{
		Use: use, Short: short, Long: long,
		Example: "  thesystem dashboard " + use,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := env.client().Dashboard(cmd.Context())
			if err != nil {
				return err
			}
			if !open {
				fmt.Fprintln(env.Stdout, d.URL)
				return nil
			}
			opener := "xdg-open"
			if runtime.GOOS == "darwin" {
				opener = "/usr/bin/open"
			}
			if out, err := exec.CommandContext(cmd.Context(), opener, d.Page).CombinedOutput(); err != nil {
				return fmt.Errorf("%s %s: %w: %s (open that file in a browser, or run `thesystem dashboard url`)", opener, d.Page, err, strings.TrimSpace(string(out)))
			}
			fmt.Fprintf(env.Stderr, "opened the dashboard (%s)\n", d.Page)
			return nil
		},
	}
}
