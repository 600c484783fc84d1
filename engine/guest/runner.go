package guest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thesystem-dev/thesystem/engine/chat"
)

// RunnerOptions configure an agent's chat loop.
type RunnerOptions struct {
	// Name is the agent's chat name.
	Name string
	// Identity is the file of the agent's chat key, which proves its name
	// to a server that admits only issued identities; "" identifies
	// without one (an open server).
	Identity string
	// ChatURL is the chat server (ws://127.0.0.1:6667 in a container).
	ChatURL string
	// Channels to join; the agent answers messages there that mention it
	// (@name) and direct messages.
	Channels []string
	// Mission is prepended to every prompt (for a runtime without a system
	// prompt of its own; claude gets it as --append-system-prompt).
	Mission string
	// Session is the file that keeps the runtime's conversation id: the
	// first task starts it (--session-id), each next one continues it
	// (--resume), so the agent remembers. "" runs each task afresh.
	Session string
	// Ask: the runtime runs in its asking permission mode, where -p can
	// neither edit nor run anything; each answer says so.
	Ask bool
	// Argv is the runtime (claude -p …, codex exec …); the prompt is its
	// standard input.
	Argv []string
	// Runtime says how the runtime is run and read: RuntimeClaude (the
	// default) or RuntimeCodex.
	Runtime string
	// Env is the runtime's environment.
	Env []string
	// Timeout bounds one run of the runtime; 0 means 10 minutes.
	Timeout time.Duration
	// MaxQueue is how many tasks may wait while one runs; more are
	// answered "busy". 0: 16.
	MaxQueue int
	// Work, when set, is the agent's working copy of the project, made on
	// its first start; the runtime runs in it.
	Work *WorkCopy
	// MaxHops bounds the tasks the agent takes from other agents in a row,
	// with none from a person between them: two agents that always
	// mention each other stop there. 0: 8.
	MaxHops int
	// Log receives what the runner does.
	Log io.Writer
}

// RunAgent is an agent's life in the swarm: connect to the chat server,
// join the channels, and for every message that mentions it (or is sent to
// it directly) run the runtime once with the mission and the message, and
// post the runtime's answer back where the message came from. It returns
// when ctx ends or the chat connection is lost (the supervisor restarts
// the container).
func RunAgent(ctx context.Context, opt RunnerOptions) error {
	logf := func(format string, args ...any) {
		if opt.Log != nil {
			fmt.Fprintf(opt.Log, "runner: "+format+"\n", args...)
		}
	}
	var key ed25519.PrivateKey
	if opt.Identity != "" {
		var err error
		if key, err = chat.ReadKey(opt.Identity); err != nil {
			return err
		}
	}
	c, err := chat.Dial(ctx, opt.ChatURL, chat.DialOptions{Name: opt.Name, Key: key})
	if err != nil {
		return fmt.Errorf("chat as %s: %w", opt.Name, err)
	}
	defer func() { _ = c.Close() }()
	me := c.ID
	for _, ch := range opt.Channels {
		if err := c.Join(ctx, ch); err != nil {
			return err
		}
	}
	logf("%s (%s) joined %s", opt.Name, me, strings.Join(opt.Channels, " "))
	if opt.Work != nil {
		did, err := opt.Work.Ensure(ctx)
		switch {
		case err != nil:
			logf("working copy: %v", err)
			opt.Work = nil // the runtime works in the workspace itself
		case did != "":
			logf("working copy %s: %s", opt.Work.Dir, did)
		}
	}
	// The chat is read all the time (its pings are answered while a task
	// runs, which may take longer than the server waits for a pong); the
	// tasks wait in a bounded queue and run one at a time, in order.
	limit := opt.MaxQueue
	if limit <= 0 {
		limit = 16
	}
	q := &taskQueue{tasks: make(chan task, limit), c: c}
	q.status(ctx, "idle", "")
	maxHops := opt.MaxHops
	if maxHops <= 0 {
		maxHops = 8
	}
	hops := 0 // tasks from agents in a row
	work, workDone := make(chan error, 1), make(chan struct{})
	go func() { work <- q.work(ctx, opt, logf); close(workDone) }()
	// The connection is read until the worker is done: stopped, the agent
	// still tells the sender of the task that runs that it was lost (a
	// read whose context ends closes the connection).
	readCtx, stopReading := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReading()
	go func() {
		select {
		case <-ctx.Done():
			select {
			case <-workDone:
			case <-time.After(5 * time.Second):
			}
		case <-workDone:
		}
		stopReading()
	}()
	for {
		f, err := c.Read(readCtx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			select {
			case err := <-work:
				return err
			default:
			}
			return fmt.Errorf("chat connection lost: %w", err)
		}
		select {
		case err := <-work:
			return err
		default:
		}
		if f.Type != chat.TypeMsg || f.From == me {
			continue
		}
		direct := f.To == me
		if !direct && !strings.Contains(f.Content, "@"+opt.Name) {
			continue
		}
		t := task{f: f, reply: f.To}
		if direct {
			t.reply = f.From
		}
		if agentNameRE.MatchString(f.FromName) {
			if hops++; hops > maxHops {
				if hops == maxHops+1 { // said once per chain
					msg := fmt.Sprintf("(not taking this from %s: %d tasks in a row came from agents with none from you; swarm.max_hops is %d — mention me yourself to go on)", f.FromName, maxHops, maxHops)
					if err := c.Say(ctx, t.reply, msg); err != nil {
						return err
					}
				}
				continue
			}
		} else {
			hops = 0
		}
		if f.FromName == userName && isCommand(f.Content, opt.Name, "/files") {
			// Read-only: answered at once, beside a task that runs.
			go func(reply string) { _ = c.Say(ctx, reply, changedFiles(ctx, opt.Work)) }(t.reply)
			continue
		}
		if stat := isCommand(f.Content, opt.Name, "/diff --stat"); f.FromName == userName && (stat || isCommand(f.Content, opt.Name, "/diff")) {
			// Read-only too (git takes no lock for it): at once.
			go func(reply string) { _ = c.Say(ctx, reply, diffAnswer(ctx, opt.Work, stat)) }(t.reply)
			continue
		}
		if f.FromName == userName && isCommand(f.Content, opt.Name, "/cancel") {
			if err := c.Say(ctx, t.reply, q.cancel()); err != nil {
				return err
			}
			continue
		}
		select {
		case q.tasks <- t:
			q.queueChanged(ctx)
		default:
			if err := c.Say(ctx, t.reply, fmt.Sprintf("(busy: %d tasks are queued already; this one was not taken, send it again later)", limit)); err != nil {
				return err
			}
		}
	}
}

// diffAnswer answers /diff (or /diff --stat): what the agent changed.
func diffAnswer(ctx context.Context, w *WorkCopy, statOnly bool) string {
	if w == nil {
		return noCopy
	}
	d, err := w.Diff(ctx, maxAnswer, statOnly)
	if err != nil {
		return fmt.Sprintf("(no diff: %v)", err)
	}
	return d
}

// noCopy answers what needs a working copy when the agent has none.
const noCopy = "(no working copy: I work in my workspace only)"

// changedFiles answers /files: FilesPrefix, the branch, then a file a
// line.
func changedFiles(ctx context.Context, w *WorkCopy) string {
	if w == nil {
		return noCopy
	}
	files, err := w.Files(ctx)
	if err != nil {
		return fmt.Sprintf("(no files: %v)", err)
	}
	return FilesPrefix + w.Branch() + ":\n" + strings.Join(files, "\n")
}

// maxAnswer is the most an answer carries (the chat takes 2 MiB).
const maxAnswer = 1536 << 10

// progressMark starts a progress line in the chat (what the agent is doing
// while it works, before its answer).
const progressMark = "⋯ "

// task is a message for the agent and where its answer goes.
type task struct {
	f     chat.Frame
	reply string
}

// taskQueue runs the agent's tasks one at a time, in order; the current
// one can be cancelled.
type taskQueue struct {
	tasks chan task
	c     *chat.Client

	mu      sync.Mutex
	current context.CancelFunc // of the task running, nil when idle
	task    string             // what it is, for the status
}

// status tells the user (the server's observers) what the agent does.
func (q *taskQueue) status(ctx context.Context, state, task string) {
	_ = q.c.Status(ctx, state, task, len(q.tasks))
}

// queueChanged says the queue's new length while a task runs.
func (q *taskQueue) queueChanged(ctx context.Context) {
	q.mu.Lock()
	working, task := q.current != nil, q.task
	q.mu.Unlock()
	if working {
		q.status(ctx, "working", task)
	}
}

// excerpt is a task's first line, without the mention, for the status.
func excerpt(content, agent string) string {
	s := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(content), "@"+agent))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// work runs the queue's tasks until ctx ends or an answer cannot be sent.
func (q *taskQueue) work(ctx context.Context, opt RunnerOptions, logf func(string, ...any)) error {
	c := q.c
	for {
		var t task
		select {
		case <-ctx.Done():
			return nil
		case t = <-q.tasks:
		}
		answer := q.do(ctx, opt, t, logf)
		if ctx.Err() != nil {
			// The agent is stopping (stop, a restart): the task is lost,
			// and its sender is told so rather than left waiting.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = c.Say(sctx, t.reply, "(interrupted: I was stopped — a stop or a restart — before this task finished; send it again)")
			cancel()
			return nil
		}
		if err := c.Say(ctx, t.reply, answer); err != nil {
			return fmt.Errorf("answer: %w", err)
		}
	}
}

// do is the answer to one message: a command of the user's, or a task
// for the runtime.
func (q *taskQueue) do(ctx context.Context, opt RunnerOptions, t task, logf func(string, ...any)) string {
	command := func(cmd string) bool { return t.f.FromName == userName && isCommand(t.f.Content, opt.Name, cmd) }
	switch {
	case command("/reset"):
		return resetSession(opt.Session)
	case command("/reset --hard"):
		answer := resetSession(opt.Session)
		if opt.Work == nil {
			return answer + " " + noCopy
		}
		did, err := opt.Work.Renew(ctx)
		if err != nil {
			return fmt.Sprintf("%s (no fresh working copy: %v)", answer, err)
		}
		return answer + " " + did
	case command("/bundle"):
		if opt.Work == nil {
			return "(no working copy: nothing to export)"
		}
		b, err := opt.Work.Bundle(ctx)
		if err != nil {
			return fmt.Sprintf("(no bundle: %v)", err)
		}
		return b
	case command("/sync"):
		if opt.Work == nil {
			return noCopy
		}
		head, moved, err := opt.Work.Fetch(ctx)
		switch {
		case err != nil:
			return fmt.Sprintf("(no sync: %v)", err)
		case !moved:
			return fmt.Sprintf("My branch %s already starts from the project's HEAD (%s): nothing to sync.", opt.Work.Branch(), short(head))
		case opt.Work.Rebased(ctx, head):
			return fmt.Sprintf("My branch %s already contains the project's HEAD (%s): diff and export now count from it.", opt.Work.Branch(), short(head))
		}
		t.f.Content = fmt.Sprintf("The project has moved on: its HEAD is now %s, fetched into your working copy as %s. "+
			"Rebase your branch %s onto it: commit your uncommitted work first, then `git rebase %s`; resolve any conflicts yourself "+
			"(keep what both sides meant), check that the project still builds and its tests pass, and say which conflicts you resolved and how.",
			short(head), ProjectRef, opt.Work.Branch(), ProjectRef)
		answer := q.run(ctx, opt, t, logf)
		if opt.Work.Rebased(ctx, head) {
			return answer + fmt.Sprintf("\n(synced: %s now starts from the project's %s)", opt.Work.Branch(), short(head))
		}
		return answer + fmt.Sprintf("\n(not synced: %s does not contain the project's %s yet; ask me again, or agents reset --hard)", opt.Work.Branch(), short(head))
	}
	return q.run(ctx, opt, t, logf)
}

// run gives the task to the runtime, as the current one (which cancel
// stops), and tells the chat what the agent does meanwhile.
func (q *taskQueue) run(ctx context.Context, opt RunnerOptions, t task, logf func(string, ...any)) string {
	logf("task from %s in %s", t.f.FromName, t.f.To)
	opt.Env = RefreshToken(opt.Env)
	began, usedBefore := time.Now(), ownUsage(ctx, opt.Env)
	if spent, until := usedBefore.spent(); spent {
		// Not started: every request would be refused (and the runtime
		// would retry them for minutes).
		q.status(ctx, "needs you", "its budget at the proxy is spent")
		return fmt.Sprintf("(not started: my budget at the proxy is spent until %s; raise proxy.budget, or wait)\n— needs you: its budget at the proxy is spent",
			until.Local().Format("15:04 Jan 2"))
	}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q.mu.Lock()
	q.current, q.task = cancel, excerpt(t.f.Content, opt.Name)
	task := q.task
	q.mu.Unlock()
	q.status(ctx, "working", task)
	// The proxy refusing the runtime's requests (the budget ran out while
	// it worked) ends the run: the runtime would retry for minutes.
	var refused atomic.Bool
	if usedBefore.ok {
		go func() {
			t := time.NewTicker(2 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-tctx.Done():
					return
				case <-t.C:
					if u := ownUsage(tctx, opt.Env); u.ok && u.Refused > usedBefore.Refused {
						refused.Store(true)
						cancel()
						return
					}
				}
			}
		}()
	}
	var before State
	if opt.Work != nil {
		before, _ = opt.Work.Now(ctx)
	}
	answer, problem := runOnce(tctx, opt, t.f, func(line string) {
		_ = q.c.Say(ctx, t.reply, progressMark+line)
	})
	cancelled := tctx.Err() != nil && ctx.Err() == nil && !refused.Load()
	switch {
	case refused.Load():
		answer, problem = "(stopped: the proxy refused my requests, my budget is spent)", "its budget at the proxy is spent"
	case cancelled:
		answer, problem = "(cancelled: the task was stopped before it finished)", ""
	}
	q.mu.Lock()
	q.current, q.task = nil, ""
	q.mu.Unlock()
	if opt.Ask {
		answer += "\n(swarm.permissions is ask: I could not edit files or run commands; set swarm.permissions: auto to let me work in my sandbox)"
	}
	// The task's outcome: what it changed, what it cost as the proxy
	// counted it (never the runtime's own claim), how long it took.
	o := outcome{took: time.Since(began), problem: problem, cancelled: cancelled, files: -1}
	if opt.Work != nil && before.Tree != "" {
		if after, err := opt.Work.Now(ctx); err == nil {
			o.files, o.commits, _ = opt.Work.Changes(ctx, before, after)
		}
	}
	if usedBefore.ok {
		if after := ownUsage(ctx, opt.Env); after.ok && after.Requests >= usedBefore.Requests {
			o.requests, o.tokens, o.counted = after.Requests-usedBefore.Requests, after.Tokens-usedBefore.Tokens, true
			if after.Budget.Requests > 0 && after.Requests >= after.Budget.Requests || after.Budget.Tokens > 0 && after.Tokens >= after.Budget.Tokens {
				o.problem = cmp.Or(o.problem, "its budget at the proxy is spent")
			}
		}
	}
	switch {
	case o.problem != "":
		q.status(ctx, "needs you", o.problem)
	case len(q.tasks) == 0:
		q.status(ctx, "idle", "")
	}
	return answer + "\n" + o.String()
}

// outcome is the line that ends a task's answer.
type outcome struct {
	took             time.Duration
	files, commits   int // files -1: no working copy
	requests, tokens int64
	counted          bool // the proxy's count was read
	problem          string
	cancelled        bool
}

func (o outcome) String() string {
	var parts []string
	switch {
	case o.cancelled:
		parts = append(parts, "cancelled after "+round(o.took))
	case o.problem != "":
		parts = append(parts, "needs you: "+o.problem+", after "+round(o.took))
	default:
		parts = append(parts, "done in "+round(o.took))
	}
	if o.files >= 0 {
		parts = append(parts, fmt.Sprintf("%s changed, %s", plural(o.files, "file"), plural(o.commits, "commit")))
	}
	if o.counted {
		parts = append(parts, fmt.Sprintf("%s in %s (the proxy's count)", plural(int(o.tokens), "token"), plural(int(o.requests), "request")))
	}
	return "— " + strings.Join(parts, " · ")
}

func round(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// usage is the agent's own consumption as the proxy counts it.
type usage struct {
	ok                        bool
	Since                     time.Time
	Requests, Tokens, Refused int64
	Budget                    struct {
		Requests, Tokens int64
		Period           time.Duration
	}
}

// spent says, when the budget is spent, until when.
func (u usage) spent() (bool, time.Time) {
	b := u.Budget
	if u.ok && (b.Requests > 0 && u.Requests >= b.Requests || b.Tokens > 0 && u.Tokens >= b.Tokens) {
		return true, u.Since.Add(b.Period)
	}
	return false, time.Time{}
}

// ownUsage asks the proxy (AGENTAUTH_URL, with the agent's token) what
// the agent has spent in the current period.
func ownUsage(ctx context.Context, env []string) usage {
	base, token := envValue(env, "AGENTAUTH_URL"), envValue(env, "AGENTAUTH_TOKEN")
	if base == "" || token == "" {
		return usage{}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/agentauth/usage", nil)
	if err != nil {
		return usage{}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	// Straight to the proxy: no HTTP_PROXY of the environment's.
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		return usage{}
	}
	defer func() { _ = resp.Body.Close() }()
	var u usage
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&u) != nil {
		return usage{}
	}
	u.ok = true
	return u
}

func envValue(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v
		}
	}
	return ""
}

// cancel stops the task that runs (SIGINT to the runtime, then a kill),
// and says what it did.
func (q *taskQueue) cancel() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.current == nil {
		return "(nothing to cancel: I am not working on a task)"
	}
	q.current()
	return fmt.Sprintf("Cancelling the current task (%d more queued).", len(q.tasks))
}

// runOnce runs the runtime with the mission and the message as its
// prompt; problem is why the agent cannot go on alone, if it cannot.
func runOnce(ctx context.Context, opt RunnerOptions, f chat.Frame, progress func(string)) (answer, problem string) {
	answer = runOnceAnswer(ctx, opt, f, progress, &problem)
	return answer, problem
}

func runOnceAnswer(ctx context.Context, opt RunnerOptions, f chat.Frame, progress func(string), problem *string) string {
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	prompt := strings.TrimSpace(fmt.Sprintf("%s\n\nMessage from %s in %s:\n%s", opt.Mission, f.FromName, f.To, f.Content))
	st, stderr, err := runRuntime(ctx, opt, prompt, progress)
	if err != nil && (strings.Contains(stderr, "No conversation found") || strings.Contains(stderr, "no rollout found for thread id")) {
		// The runtime lost the conversation (a new workspace, a reset by
		// hand): a new one, once.
		_ = os.Remove(opt.Session)
		st, stderr, err = runRuntime(ctx, opt, prompt, progress)
	}
	answer := st.Answer
	said := stderr + "\n" + answer
	if err != nil || st.Failed {
		// Why a run failed, from what the proxy told the runtime (it
		// prints the API's error); never from a run that went well, whose
		// answer may quote anything.
		switch {
		case strings.Contains(said, "budget_exceeded") || strings.Contains(said, "has spent its budget"):
			*problem = "its budget at the proxy is spent"
		case strings.Contains(said, "invalid or revoked token"):
			*problem = "its token was revoked"
		}
	}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		*problem = ""
	case errors.As(err, &ee):
		*problem = cmp.Or(*problem, "the runtime failed")
		return fmt.Sprintf("(the runtime failed with %v: %s)", err, lastLine(said))
	case err != nil:
		*problem = cmp.Or(*problem, "the runtime could not run")
		return fmt.Sprintf("(the runtime could not run: %v)", err)
	case answer == "":
		answer = "(no answer)"
	}
	if st.Failed {
		*problem = cmp.Or(*problem, "the run ended in an error")
		answer += "\n(the run ended in an error)"
	}
	if len(st.Denied) > 0 {
		answer += fmt.Sprintf("\n(not allowed to use: %s)", strings.Join(st.Denied, ", "))
	}
	return answer
}

// runRuntime runs the runtime once with prompt on its standard input, in
// the agent's conversation when it keeps one. Not an argument: every
// account of the machine may read a process's arguments (ps), and the
// task is the user's; and an argument may not be longer than 128 KiB.
func runRuntime(ctx context.Context, opt RunnerOptions, prompt string, progress func(string)) (Stream, string, error) {
	argv := append([]string(nil), opt.Argv...)
	codex := opt.Runtime == RuntimeCodex
	id, resume, err := session(opt.Session, !codex)
	if err != nil {
		return Stream{}, "", fmt.Errorf("the conversation could not be kept: %w", err)
	}
	read := ReadStream
	if codex {
		// Its provider: the proxy (options before its resume command).
		read, argv = ReadCodexStream, append(argv, codexProvider(opt.Env)...)
		if err := codexHome(opt.Env); err != nil {
			return Stream{}, "", fmt.Errorf("codex's home: %w", err)
		}
	}
	switch {
	case id == "":
	case codex:
		argv = append(argv, "resume", id)
	case resume:
		argv = append(argv, "--resume", id)
	default:
		argv = append(argv, "--session-id", id)
	}
	if codex {
		argv = append(argv, "-") // the prompt: stdin (claude -p reads it without being told)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(prompt)
	// Stopped (cancelled, timed out): SIGINT first, a kill 2 s later.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 2 * time.Second
	cmd.Env = opt.Env
	if opt.Work != nil {
		cmd.Dir = opt.Work.Dir
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	// The output is read as it comes, through a pipe of ours that Wait's
	// end closes: a child the runtime left holding its stdout cannot keep
	// the task from ending (Wait gives up on it after WaitDelay).
	stdout, pw := io.Pipe()
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		return Stream{}, "", err
	}
	// What it does, as it does it: at most a line a second.
	th := &throttle{interval: time.Second, send: func(string) {}, now: time.Now}
	var mu sync.Mutex
	if progress != nil {
		th.send = progress
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				mu.Lock()
				th.tick()
				mu.Unlock()
			}
		}
	}()
	streamed := make(chan Stream, 1)
	go func() {
		streamed <- read(stdout, func(line string) { mu.Lock(); th.line(line); mu.Unlock() })
		_, _ = io.Copy(io.Discard, stdout)
	}()
	err = cmd.Wait()
	_ = pw.Close()
	st := <-streamed
	close(done)
	if codex && st.Session != "" && st.Session != id && opt.Session != "" {
		// The conversation codex started: the next task resumes it.
		if werr := writeSession(opt.Session, st.Session); werr != nil {
			return st, errb.String() + "\n(the conversation could not be kept: " + werr.Error() + ")", err
		}
	}
	return st, errb.String(), err
}

// agentNameRE matches the names the engine gives its agents.
var agentNameRE = regexp.MustCompile(`^agent-[0-9]+$`)

// userName is the user's chat name: only the user's messages are
// commands to the runner (the server stamps the sender's name).
const userName = "user"

// isCommand: content is cmd, alone or after a mention of the agent.
func isCommand(content, agent, cmd string) bool {
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(content), "@"+agent)) == cmd
}

// session is the conversation id kept in file, made the first time (a
// new UUID, written before the first run uses it); resume says the runtime
// has it already. No file: no conversation ("").
func session(file string, choose bool) (id string, resume bool, err error) {
	if file == "" {
		return "", false, nil
	}
	if b, err := os.ReadFile(file); err == nil && len(strings.TrimSpace(string(b))) == 36 {
		return strings.TrimSpace(string(b)), true, nil
	}
	if !choose { // the runtime names the conversation it starts
		return "", false, nil
	}
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", false, err
	}
	u[6], u[8] = u[6]&0x0f|0x40, u[8]&0x3f|0x80 // version 4, RFC 4122 variant
	h := hex.EncodeToString(u[:])
	id = h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	return id, false, writeSession(file, id)
}

// writeSession keeps the conversation's id in file.
func writeSession(file, id string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	return os.WriteFile(file, []byte(id+"\n"), 0o600)
}

// resetSession forgets the conversation: the next task starts a new one.
func resetSession(file string) string {
	if file == "" {
		return "(I keep no conversation: each task starts afresh)"
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Sprintf("(the conversation could not be reset: %v)", err)
	}
	return "Started a new conversation: I remember nothing of the earlier ones."
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
