package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/api"
)

func newAgentsCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agents",
		Short: "List the agents and read their logs",
		Example: `  thesystem agents list
  thesystem agents logs agent-1 -f`,
		Args: usageArgs(cobra.NoArgs),
		RunE: showHelp,
	}
	var asJSON, follow bool
	var lines int
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the agents with their backend, provider, state, uptime and whether they are in the chat",
		Example: `  thesystem agents list --json`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			agents, err := env.client().Agents(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONTo(env.Stdout, agents)
			}
			if len(agents) == 0 {
				fmt.Fprintln(env.Stdout, "no agents: the stack is not running (`thesystem start`), or swarm.agents is 0")
				return nil
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AGENT\tBACKEND\tPROVIDER\tSTATE\tSINCE\tCHAT\tWORK")
			for _, a := range agents {
				inChat := "-"
				if a.InChat {
					inChat = "in"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Backend, a.Provider, a.State, since(a.Since), inChat, printable(work(a)))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	list.Long = `List the agents: their component state, whether they are in the chat,
and what they say they do (idle, or working on a task since when, with how
many tasks queued behind it).`
	logs := &cobra.Command{
		Use:     "logs <agent>",
		Short:   "Show one agent's log",
		Example: `  thesystem agents logs agent-2 -f`,
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			print := func(l api.LogLine) bool {
				fmt.Fprintf(env.Stdout, "%s %s\n", l.Time.Local().Format("15:04:05.000"), printable(l.Text))
				return true
			}
			c := env.client()
			if follow {
				return c.FollowLogs(cmd.Context(), args[0], lines, print)
			}
			ls, err := c.Logs(cmd.Context(), args[0], lines)
			if err != nil {
				return err
			}
			for _, l := range ls {
				print(l)
			}
			return nil
		},
	}
	logs.Flags().BoolVarP(&follow, "follow", "f", false, "follow new lines")
	logs.Flags().IntVarP(&lines, "lines", "n", 100, "how many recent lines to show")
	var hard bool
	reset := newAgentCommandCommand(env, "reset", func() string {
		if hard {
			return "/reset --hard"
		}
		return "/reset"
	}, "asked %s to start a new conversation",
		"Start a new conversation with an agent: it forgets the earlier tasks",
		`Each agent keeps one conversation across tasks (so "now also update the
README" works after "add a test"); reset starts a new one. With --hard the
agent also gets a fresh working copy of the project's HEAD on its branch;
the old branch's commits are kept as a bundle in its workspace (the answer
says where). It is a direct message "/reset" from you, so the agent answers
in the chat.`)
	reset.Flags().BoolVar(&hard, "hard", false, "also a fresh working copy from the project's HEAD")
	cancel := newAgentCommandCommand(env, "cancel", func() string { return "/cancel" }, "asked %s to stop its task",
		"Stop the task an agent is working on (the queued ones go on)",
		`Stop the agent's current task: its runtime gets SIGINT, then a kill 2 s
later, and the task is answered "cancelled"; the tasks queued behind it go
on. It is a direct message "/cancel" from you.`)
	sync := newAgentCommandCommand(env, "sync", func() string { return "/sync" }, "asked %s to rebase its branch onto the project's HEAD",
		"Bring the project's new commits to an agent: it rebases its branch onto them",
		`Fetch the project's current HEAD into the agent's working copy and give
the agent the task of rebasing its branch onto it, conflicts resolved by the
agent and reported in the chat; once its branch contains that HEAD, diff and
export count from there. It waits its turn behind the agent's queued tasks.
Uncommitted files of your tree are not part of it (only commits are).`)
	var stat bool
	diff := &cobra.Command{
		Use:   "diff <agent>",
		Short: "Show what an agent changed in its working copy",
		Long: `Show the agent's commits on its branch (thesystem/<agent>), the files it
changed with their line counts, new files it has not added, and the diff
itself (committed or not) against the project's commit it started from;
with --stat, all but the diff itself. A warning comes first when another
agent's branch changes the same files. The agent answers it between tasks
(a direct message "/diff" from you).`,
		Example: `  thesystem agents diff agent-1
  thesystem agents diff agent-1 --stat`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			diff := env.client().AgentDiff
			if stat {
				diff = env.client().AgentDiffStat
			}
			answer, err := diff(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, printable(answer))
			return nil
		},
	}
	diff.Flags().BoolVar(&stat, "stat", false, "the commits and the files with their line counts, not the diff itself")
	var branch, repo string
	var force bool
	export := &cobra.Command{
		Use:   "export <agent>",
		Short: "Bring an agent's branch into your repository as a local branch",
		Long: `Bring the agent's branch (thesystem/<agent>) into the git repository of the
stack's project (vm.mount; or -C DIR) as a local branch of the same name (or
--branch NAME), through a git bundle read out of the agent's workspace.
Nothing else changes: no checkout, no merge, your working tree and your
current branch stay as they are. An existing branch is not overwritten
without --force.`,
		Example: `  thesystem agents export agent-1
  thesystem agents export agent-2 --branch review/agent-2 -C ~/src/project`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return exportBranch(cmd.Context(), env, args[0], branch, repo, force)
		},
	}
	export.Flags().StringVar(&branch, "branch", "", "the local branch to create (default: the agent's, thesystem/<agent>)")
	export.Flags().StringVarP(&repo, "repo", "C", "", "the repository to bring it into (default: the stack's project, vm.mount)")
	export.Flags().BoolVar(&force, "force", false, "overwrite the local branch if it exists")
	cmd.AddCommand(list, logs, reset, cancel, sync, diff, export)
	return cmd
}

// work is what an agent does, in a few words.
func work(a api.Agent) string {
	switch a.Work {
	case "":
		return "-"
	case "working":
		s := "working " + since(a.WorkSince) + ": " + a.Task
		if len(s) > 70 {
			s = s[:70] + "…"
		}
		if a.Queued > 0 {
			s += fmt.Sprintf(" (+%d queued)", a.Queued)
		}
		return s
	case "needs you":
		return "needs you: " + a.Task
	}
	return a.Work
}

// newAgentCommandCommand is `agents <name> <agent>`: the command text said
// to the agent directly, as the user; its answer comes in the chat.
func newAgentCommandCommand(env *Env, name string, text func() string, said, short, long string) *cobra.Command {
	return &cobra.Command{
		Use: name + " <agent>", Short: short, Long: long,
		Example: "  thesystem agents " + name + " agent-1",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := env.client().ChatSend(cmd.Context(), args[0], text()); err != nil {
				return err
			}
			fmt.Fprintf(env.Stderr, said+" (its answer: `thesystem chat tail`)\n", args[0])
			return nil
		},
	}
}

// exportBranch brings the agent's branch into repo (api.ExportBranch),
// with errors that name the flag to change.
func exportBranch(ctx context.Context, env *Env, agent, dst, repo string, force bool) error {
	flag := "-C " + repo
	if repo == "" {
		// The project the agents work on, as the running stack has it.
		st, err := env.client().Status(ctx)
		if err != nil {
			return err
		}
		repo, flag = cmp.Or(st.Project, "."), "the stack's project ("+cmp.Or(st.Project, ".")+")"
	}
	x, err := env.client().ExportBranch(ctx, agent, repo, dst, force)
	var notRepo *api.NotARepoError
	var exists *api.BranchExistsError
	switch {
	case errors.As(err, &notRepo):
		return usagef("%s: %s (give -C DIR, a directory in your repository)", flag, strings.TrimPrefix(notRepo.Error(), repo+": "))
	case errors.As(err, &exists):
		return fmt.Errorf("branch %s exists in %s: give --force to overwrite it, or --branch NAME", exists.Branch, exists.Repo)
	case err != nil && strings.Contains(err.Error(), "not a valid branch name"):
		return usagef("--branch %s: not a valid branch name", dst)
	case err != nil:
		return err
	}
	fmt.Fprintf(env.Stdout, "%s branch %s at %s in %s\n", x.Did(), x.Branch, shortSHA(x.Commit), x.Repo)
	fmt.Fprintf(env.Stderr, "your working tree and current branch are unchanged (see it: git log %s; take it: git merge %s)\n", x.Branch, x.Branch)
	return nil
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
