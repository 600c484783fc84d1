package guest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/thesystem-dev/thesystem/engine/chat"
)

func TestRunAgent(t *testing.T) {
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = chat.New(chat.Options{Channels: []string{"#agents"}}).Serve(ctx, ln) }()
	url := "ws://" + ln.Addr().String()

	done := make(chan error, 1)
	go func() {
		done <- RunAgent(ctx, RunnerOptions{
			Name: "agent-1", ChatURL: url, Channels: []string{"#agents"}, Mission: "Keep the tests green.",
			// The runtime stand-in prints its prompt back.
			Argv: []string{"sh", "-c", `printf 'done: %s' "$(cat)"`, "runtime"}, Env: os.Environ(),
		})
	}()

	// A person in the channel.
	ws, resp, err := websocket.Dial(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Body != nil {
		_ = resp.Body.Close()
	}
	defer ws.CloseNow()
	ws.SetReadLimit(4 << 20)
	send := func(v any) { b, _ := json.Marshal(v); _ = ws.Write(t.Context(), websocket.MessageText, b) }
	next := func(typ string) map[string]any {
		rctx, rcancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer rcancel()
		for {
			_, b, err := ws.Read(rctx)
			if err != nil {
				t.Fatalf("waiting for %s: %v", typ, err)
			}
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			if m["type"] == typ {
				return m
			}
		}
	}
	send(map[string]any{"type": "IDENTIFY", "name": "james"})
	next("WELCOME")
	send(map[string]any{"type": "JOIN", "channel": "#agents"})
	j := next("JOINED")
	for len(j["agents"].([]any)) < 2 { // wait for the agent to be in
		time.Sleep(50 * time.Millisecond)
		send(map[string]any{"type": "LIST_AGENTS", "channel": "#agents"})
		j = map[string]any{"agents": next("AGENTS")["list"]}
	}
	send(map[string]any{"type": "MSG", "to": "#agents", "content": "unrelated chatter"})
	send(map[string]any{"type": "MSG", "to": "#agents", "content": "@agent-1 please fix the build"})
	var answer map[string]any
	for {
		m := next("MSG")
		if m["from_name"] == "agent-1" {
			answer = m
			break
		}
	}
	content := answer["content"].(string)
	if answer["to"] != "#agents" || !strings.HasPrefix(content, "done: Keep the tests green.") ||
		!strings.Contains(content, "Message from james in #agents:\n@agent-1 please fix the build") {
		t.Errorf("answer %v", answer)
	}
	if strings.Contains(content, "unrelated chatter") {
		t.Error("the agent answered a message that did not mention it")
	}

	// A task longer than one argument may be (128 KiB) reaches the runtime
	// whole: it is its standard input.
	long := "@agent-1 " + strings.Repeat("a long task; ", 25_000) + "the end"
	send(map[string]any{"type": "MSG", "to": "#agents", "content": long})
	for {
		m := next("MSG")
		if m["from_name"] != "agent-1" {
			continue
		}
		got := m["content"].(string)
		if !strings.HasPrefix(got, "done: Keep the tests green.") || !strings.Contains(got, long+"\n") {
			t.Errorf("the long task's answer: %d bytes, %.300q", len(got), got)
		}
		break
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunAgent after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunAgent did not return")
	}
}

// TestRunAgentSession: the agent keeps one conversation across tasks
// (the first starts it with --session-id, the next ones --resume it, the id
// kept in the session file); "/reset" from the user starts a new one, from
// anyone else it is a task like any other; with Ask each answer says the
// runtime could not work.
func TestRunAgentSession(t *testing.T) {
	url := chatServer(t, chat.Options{})
	sessionFile := filepath.Join(t.TempDir(), ".thesystem", "session")
	startAgent(t, url, RunnerOptions{Session: sessionFile, Ask: true,
		// The runtime stand-in prints its arguments, then its stdin.
		Argv: []string{"sh", "-c", `for a in "$@"; do printf '%s|' "$a"; done; printf 'stdin: %s' "$(cat)"`, "runtime", "-p", "--flag"}})
	user, err := chat.Dial(t.Context(), url, chat.DialOptions{Name: "user"})
	if err != nil {
		t.Fatal(err)
	}
	defer user.Close()
	other, err := chat.Dial(t.Context(), url, chat.DialOptions{Name: "mallory"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	agent := joinedAgents(t, user, "agent-1")["agent-1"]
	ask := func(c *chat.Client, text string) string {
		t.Helper()
		if err := c.Say(t.Context(), agent, text); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer rcancel()
		for {
			f, err := c.Read(rctx)
			if err != nil {
				t.Fatalf("no answer to %q: %v", text, err)
			}
			if f.Type == chat.TypeMsg && f.FromName == "agent-1" {
				return f.Content
			}
		}
	}
	first := ask(user, "add a test")
	b, err := os.ReadFile(sessionFile)
	id := strings.TrimSpace(string(b))
	if err != nil || len(id) != 36 || !strings.Contains(first, "-p|--flag|--session-id|"+id+"|") {
		t.Fatalf("first task: %q; session file %q %v", first, b, err)
	}
	// The task on stdin, not in the arguments (which every account of the
	// machine may read).
	if args, in, _ := strings.Cut(first, "stdin: "); strings.Contains(args, "add a test") || !strings.Contains(in, "add a test") {
		t.Errorf("first task: %q: the task in the arguments, or not on stdin", first)
	}
	if !strings.Contains(first, "swarm.permissions is ask") {
		t.Errorf("ask mode not said: %q", first)
	}
	if second := ask(user, "now the README"); !strings.Contains(second, "--resume|"+id+"|") {
		t.Errorf("second task: %q, want it to resume %s", second, id)
	}
	if a := ask(other, "/reset"); !strings.Contains(a, "--resume|"+id+"|") {
		t.Errorf("someone else's /reset: %q, want it run as a task in the same conversation", a)
	}
	if a := ask(user, "/diff"); !strings.Contains(a, "no working copy") {
		t.Errorf("/diff without a working copy: %q", a)
	}
	if a := ask(user, "/reset"); !strings.Contains(a, "Started a new conversation") {
		t.Errorf("/reset: %q", a)
	}
	if _, err := os.Stat(sessionFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the session file after /reset: %v", err)
	}
	if third := ask(user, "start over"); !strings.Contains(third, "--session-id|") || strings.Contains(third, id) {
		t.Errorf("after /reset: %q, want a new conversation", third)
	}
}

// TestRunAgentQueue: while a task runs the agent still reads the chat (it
// answers the server's pings: a task may outlast the ping timeout),
// queues what comes (bounded: more is answered busy), answers /diff at
// once, and the user's /cancel stops the task within 2 s; the queued task
// runs next.
func TestRunAgentQueue(t *testing.T) {
	url := chatServer(t, chat.Options{PingInterval: 100 * time.Millisecond, Observers: []string{"user"}})
	startAgent(t, url, RunnerOptions{MaxQueue: 1,
		// "slow" takes a minute unless stopped; "long" a second.
		Argv: []string{"sh", "-c", `p=$(cat); case "$p" in *slow*) exec sleep 60;; *long*) sleep 1;; esac; printf 'done: %s' "$p"`, "runtime"}})
	userKey, _ := chat.NewKey() // verified: an observer gets the agent's STATUS
	user, err := chat.Dial(t.Context(), url, chat.DialOptions{Name: "user", Key: userKey})
	if err != nil {
		t.Fatal(err)
	}
	defer user.Close()
	agent := joinedAgents(t, user, "agent-1")["agent-1"]
	say := func(text string) {
		t.Helper()
		if err := user.Say(t.Context(), agent, text); err != nil {
			t.Fatal(err)
		}
	}
	var statuses []string // what the agent said it does
	next := func(within time.Duration) string {
		t.Helper()
		rctx, rcancel := context.WithTimeout(t.Context(), within)
		defer rcancel()
		for {
			f, err := user.Read(rctx)
			if err != nil {
				t.Fatalf("no answer within %s: %v", within, err)
			}
			if f.Type == chat.TypeStatus && f.FromName == "agent-1" {
				statuses = append(statuses, fmt.Sprintf("%s %q %d", f.State, f.Task, f.Queued))
			}
			if f.Type == chat.TypeMsg && f.FromName == "agent-1" {
				return f.Content
			}
		}
	}
	// A task longer than ten ping intervals: the agent stays connected.
	say("a long one")
	if a := next(10 * time.Second); !strings.Contains(a, "done: ") || !strings.Contains(a, "a long one") {
		t.Fatalf("the long task: %q", a)
	}
	say("a slow one, secret-plan-7f3a")
	time.Sleep(200 * time.Millisecond) // it runs
	// What another account sees of it: every process's arguments (ps).
	if pids := argvHolding(t, "secret-plan-7f3a"); len(pids) > 0 {
		t.Errorf("the task is in the arguments of %v, which any account can read", pids)
	}
	// /diff reads, beside the task: answered at once, not queued.
	say("/diff --stat")
	if a := next(2 * time.Second); a != noCopy {
		t.Errorf("/diff beside a task: %q", a)
	}
	say("then this") // queued
	say("and this")  // over the bound
	if a := next(5 * time.Second); !strings.Contains(a, "busy: 1 tasks are queued") {
		t.Errorf("over the bound: %q", a)
	}
	t0 := time.Now()
	say("/cancel")
	if a := next(5 * time.Second); !strings.Contains(a, "Cancelling the current task (1 more queued)") {
		t.Errorf("/cancel: %q", a)
	}
	if a := next(5 * time.Second); !strings.Contains(a, "cancelled") {
		t.Errorf("the slow task after /cancel: %q", a)
	}
	if took := time.Since(t0); took > 2500*time.Millisecond {
		t.Errorf("cancelling took %s", took)
	}
	if a := next(5 * time.Second); !strings.Contains(a, "then this") {
		t.Errorf("the queued task: %q", a)
	}
	say("/cancel")
	if a := next(5 * time.Second); !strings.Contains(a, "nothing to cancel") {
		t.Errorf("/cancel when idle: %q", a)
	}
	got := strings.Join(statuses, "|")
	for _, want := range []string{`working "a slow one, secret-plan-7f3a" 0`, `working "a slow one, secret-plan-7f3a" 1`, `working "then this" 0`, `idle "" 0`} {
		if !strings.Contains(got, want) {
			t.Errorf("statuses %s lack %s", got, want)
		}
	}
}

// agentHarness runs an agent with opt against a chat server of its own
// and returns the user's client and the agent's id, once it is in.
func agentHarness(t *testing.T, opt RunnerOptions, chatOpt chat.Options) (*chat.Client, string) {
	t.Helper()
	url := chatServer(t, chatOpt)
	startAgent(t, url, opt)
	user, err := chat.Dial(t.Context(), url, chat.DialOptions{Name: "user"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = user.Close() })
	return user, joinedAgents(t, user, "agent-1")["agent-1"]
}

// chatServer serves a chat server with opt and the channel #general until
// the test ends; its URL.
func chatServer(t *testing.T, opt chat.Options) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	opt.Channels = []string{"#general"}
	go func() { _ = chat.New(opt).Serve(ctx, ln) }()
	return "ws://" + ln.Addr().String()
}

// startAgent runs an agent (agent-1 unless named) in #general of the chat
// server at url until the test ends.
func startAgent(t *testing.T, url string, opt RunnerOptions) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	opt.ChatURL, opt.Channels = url, []string{"#general"}
	if opt.Name == "" {
		opt.Name = "agent-1"
	}
	if opt.Env == nil {
		opt.Env = os.Environ()
	}
	go func() { _ = RunAgent(ctx, opt) }()
}

// joinedAgents joins #general as c and waits until the agents named are
// in it; their ids.
func joinedAgents(t *testing.T, c *chat.Client, names ...string) map[string]string {
	t.Helper()
	for {
		_ = c.Join(t.Context(), "#general")
		rctx, rcancel := context.WithTimeout(t.Context(), 5*time.Second)
		f, err := c.Read(rctx)
		rcancel()
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]string{}
		for _, a := range f.Agents {
			ids[a.Name] = a.ID
		}
		all := true
		for _, n := range names {
			all = all && ids[n] != ""
		}
		if all {
			return ids
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunAgentProgress: what the runtime does reaches the chat as it does
// it, before the answer.
func TestRunAgentProgress(t *testing.T) {
	script := `printf '%s\n' '{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Bash","input":{"command":"make test"}}]}}'
sleep 1.2
printf '%s\n' '{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Write","input":{"file_path":"/workspace/NOTES.md"}}]}}'
sleep 1.2
printf '%s\n' '{"type":"result","is_error":false,"result":"all done"}'`
	user, agent := agentHarness(t, RunnerOptions{Argv: []string{"sh", "-c", script, "runtime"}}, chat.Options{})
	if err := user.Say(t.Context(), agent, "go"); err != nil {
		t.Fatal(err)
	}
	var got []string
	rctx, rcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer rcancel()
	for len(got) < 3 {
		f, err := user.Read(rctx)
		if err != nil {
			t.Fatalf("got %q: %v", got, err)
		}
		if f.Type == chat.TypeMsg && f.FromName == "agent-1" {
			got = append(got, f.Content)
		}
	}
	want := []string{progressMark + "running: make test", progressMark + "editing NOTES.md", "all done\n— done in "}
	if got[0] != want[0] || got[1] != want[1] || !strings.HasPrefix(got[2], want[2]) {
		t.Errorf("the chat got %q, want %q…", got, want)
	}
}

// TestTaskOutcome: each answer ends with the task's outcome: the files it
// changed (committed or not, new ones too) and its commits, what it cost
// as the proxy counted it (a stand-in proxy here, reached as a runtime
// would, with the agent's token), how long it took. A task that spends
// the budget, or a runtime that fails, leaves the agent "needs you" with
// the reason, until its next task.
func TestTaskOutcome(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	var mu sync.Mutex
	requests, budget, refused := int64(0), int64(0), int64(0)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/agentauth/usage" || r.Header.Get("Authorization") != "Bearer tok-1" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, `{"agent":"agent-1","since":"2026-01-01T00:00:00Z","requests":%d,"tokens":%d,"refused":%d,"budget":{"requests":%d,"period":3600000000000}}`,
			requests, requests*700, refused, budget)
	}))
	defer proxy.Close()
	spend := func(n, limit, refusals int64) {
		mu.Lock()
		requests += n
		budget, refused = limit, refused+refusals
		mu.Unlock()
	}

	project := t.TempDir()
	gitIn(t, project, "init", "-q", "-b", "main")
	gitIn(t, project, "commit", "-q", "--allow-empty", "-m", "first")
	ws := t.TempDir()
	w := &WorkCopy{Project: project, Dir: filepath.Join(ws, "project"), Agent: "agent-1"}
	// The runtime: each task's text is a shell command it runs.
	url := chatServer(t, chat.Options{Observers: []string{"user"}})
	startAgent(t, url, RunnerOptions{Work: w,
		Env: append(os.Environ(), "AGENTAUTH_URL="+proxy.URL, "AGENTAUTH_TOKEN=tok-1"),
		Argv: []string{"sh", "-c", `p=$(cat); eval "${p##*:
}"`, "runtime"}})
	userKey, _ := chat.NewKey() // verified: an observer gets the agent's STATUS
	user, err := chat.Dial(t.Context(), url, chat.DialOptions{Name: "user", Key: userKey})
	if err != nil {
		t.Fatal(err)
	}
	defer user.Close()
	agent := joinedAgents(t, user, "agent-1")["agent-1"]
	ask := func(text string) (string, chat.Frame) {
		t.Helper()
		if err := user.Say(t.Context(), agent, text); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer rcancel()
		var answer string
		var after chat.Frame // the status that ends the task (idle or needs you)
		for answer == "" || after.Type == "" {
			f, err := user.Read(rctx)
			if err != nil {
				t.Fatalf("no answer to %q: %v", text, err)
			}
			switch {
			case f.Type == chat.TypeMsg && f.FromName == "agent-1":
				answer = f.Content
			case f.Type == chat.TypeStatus && f.State != "working":
				after = f
			}
		}
		return answer, after
	}
	spend(0, 0, 0)
	a, st := ask(`echo one > a.txt && git add a.txt && git commit -qm a && echo two > b.txt && echo ok`)
	if !strings.Contains(a, "\n— done in ") || !strings.Contains(a, " · 2 files changed, 1 commit · ") || !strings.Contains(a, "0 tokens in 0 requests (the proxy's count)") {
		t.Errorf("outcome of a task that changed files: %q", a)
	}
	if st.State != "idle" {
		t.Errorf("status after it: %+v", st)
	}
	// Words of the proxy's in a run that went well are not a problem.
	if a, st = ask(`echo the server said: invalid or revoked token, budget_exceeded`); !strings.Contains(a, "— done in ") || st.State != "idle" {
		t.Errorf("a run that quotes the proxy's errors: %q %+v", a, st)
	}
	// The budget runs out while the task runs: the proxy refuses the
	// runtime's requests, and the run ends there, not minutes later.
	mark := filepath.Join(t.TempDir(), "running")
	go func() {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(mark); err == nil {
				spend(3, 3, 1) // while it runs
				return
			}
		}
	}()
	t0 := time.Now()
	a, st = ask(`touch ` + mark + `; sleep 30; echo late`)
	if !strings.Contains(a, "(stopped: the proxy refused my requests, my budget is spent)") || !strings.Contains(a, "— needs you: its budget at the proxy is spent, after ") {
		t.Errorf("outcome when the budget runs out: %q", a)
	}
	if took := time.Since(t0); took > 10*time.Second {
		t.Errorf("the run went on for %s after the refusals", took)
	}
	if st.State != "needs you" || st.Task != "its budget at the proxy is spent" {
		t.Errorf("status at the budget: %+v", st)
	}
	// With the budget spent, a task is not started at all.
	a, st = ask(`echo never`)
	if !strings.Contains(a, "(not started: my budget at the proxy is spent until ") || strings.Contains(a, "never") || st.State != "needs you" {
		t.Errorf("a task with the budget spent: %q %+v", a, st)
	}
	spend(0, 0, 0)
	a, st = ask(`echo broken >&2; exit 3`)
	if !strings.Contains(a, "— needs you: the runtime failed") || st.State != "needs you" {
		t.Errorf("a failed runtime: %q %+v", a, st)
	}
	if a, st = ask(`echo fine`); !strings.Contains(a, "— done in ") || st.State != "idle" {
		t.Errorf("the next task: %q %+v", a, st)
	}
}

// TestHopGuard: two agents that always hand the task to each other stop
// after MaxHops tasks in a row from agents, and say why once.
func TestHopGuard(t *testing.T) {
	url := chatServer(t, chat.Options{})
	for _, pair := range [][2]string{{"agent-1", "agent-2"}, {"agent-2", "agent-1"}} {
		startAgent(t, url, RunnerOptions{Name: pair[0], MaxHops: 3,
			Argv: []string{"sh", "-c", `printf '@%s over to you' "$PEER"`, "runtime"}, Env: append(os.Environ(), "PEER="+pair[1])})
	}
	user, err := chat.Dial(t.Context(), url, chat.DialOptions{Name: "user"})
	if err != nil {
		t.Fatal(err)
	}
	defer user.Close()
	joinedAgents(t, user, "agent-1", "agent-2")
	if err := user.Say(t.Context(), "#general", "@agent-1 start"); err != nil {
		t.Fatal(err)
	}
	var handoffs, guards int
	rctx, rcancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer rcancel()
	for {
		f, err := user.Read(rctx)
		if err != nil {
			break // quiet for the rest of the window: the chain stopped
		}
		switch {
		case f.Type != chat.TypeMsg:
		case strings.Contains(f.Content, "over to you"):
			handoffs++
		case strings.Contains(f.Content, "swarm.max_hops is 3"):
			guards++
		}
	}
	// agent-1 takes the user's task and 3 from agent-2; agent-2 takes 3
	// from agent-1 and refuses the 4th: 7 hand-offs, one refusal.
	if handoffs != 7 || guards != 1 {
		t.Errorf("%d hand-offs and %d refusals, want 7 and 1", handoffs, guards)
	}
}

// TestRunAgentSync: the user's /sync when the project has not moved says
// so; when it has, the agent gets the rebase as a task (here a runtime
// that rebases) and the answer says the branch now starts from the
// project's HEAD; /reset --hard gives a fresh working copy and a new
// conversation.
func TestRunAgentSync(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	project := t.TempDir()
	gitIn(t, project, "init", "-q", "-b", "main")
	gitIn(t, project, "commit", "-q", "--allow-empty", "-m", "first")
	ws := t.TempDir()
	w := &WorkCopy{Project: project, Dir: filepath.Join(ws, "project"), Agent: "agent-1"}
	user, agent := agentHarness(t, RunnerOptions{Work: w, Session: filepath.Join(ws, ".thesystem", "session"),
		Argv: []string{"sh", "-c", `git rebase -q refs/thesystem/project >/dev/null 2>&1 && printf rebased || printf 'no rebase'`, "runtime"}}, chat.Options{})
	ask := func(text string) string {
		t.Helper()
		if err := user.Say(t.Context(), agent, text); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer rcancel()
		for {
			f, err := user.Read(rctx)
			if err != nil {
				t.Fatalf("no answer to %q: %v", text, err)
			}
			if f.Type == chat.TypeMsg && f.FromName == "agent-1" && !strings.HasPrefix(f.Content, progressMark) {
				return f.Content
			}
		}
	}
	if a := ask("/sync"); !strings.Contains(a, "already starts from the project's HEAD") {
		t.Errorf("/sync with nothing new: %q", a)
	}
	gitIn(t, w.Dir, "commit", "-q", "--allow-empty", "-m", "the agent's work")
	gitIn(t, project, "commit", "-q", "--allow-empty", "-m", "the user's new commit")
	head := gitIn(t, project, "rev-parse", "HEAD")
	if a := ask("/sync"); !strings.Contains(a, "rebased") || !strings.Contains(a, "(synced: thesystem/agent-1 now starts from the project's "+head[:12]+")") {
		t.Errorf("/sync: %q", a)
	}
	if log := gitIn(t, w.Dir, "log", "--format=%s"); log != "the agent's work\nthe user's new commit\nfirst" {
		t.Errorf("the branch after the sync: %q", log)
	}
	if a := ask("/files"); a != FilesPrefix+"thesystem/agent-1:\n" {
		t.Errorf("/files with nothing of its own (empty commits): %q", a)
	}
	a := ask("/reset --hard")
	if !strings.Contains(a, "Started a new conversation") || !strings.Contains(a, "A fresh working copy") || !strings.Contains(a, "is kept in") {
		t.Errorf("/reset --hard: %q", a)
	}
	if log := gitIn(t, w.Dir, "log", "--format=%s"); log != "the user's new commit\nfirst" {
		t.Errorf("the branch after reset --hard: %q", log)
	}
}

// TestRunAgentStopped: an agent stopped while it works (stop, a restart)
// tells the task's sender that the task was lost, instead of leaving it
// waiting for an answer that never comes.
func TestRunAgentStopped(t *testing.T) {
	url := chatServer(t, chat.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	mark := filepath.Join(t.TempDir(), "running")
	go func() {
		done <- RunAgent(ctx, RunnerOptions{Name: "agent-1", ChatURL: url, Channels: []string{"#general"}, Env: append(os.Environ(), "MARK="+mark),
			Argv: []string{"sh", "-c", `touch "$MARK"; exec sleep 60`, "runtime"}})
	}()
	user, err := chat.Dial(t.Context(), url, chat.DialOptions{Name: "user"})
	if err != nil {
		t.Fatal(err)
	}
	defer user.Close()
	joinedAgents(t, user, "agent-1")
	if err := user.Say(t.Context(), "#general", "@agent-1 a long one"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(mark); err == nil {
			break // the task runs
		}
		if time.Now().After(deadline) {
			t.Fatal("the task did not start")
		}
	}
	cancel()
	rctx, rcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer rcancel()
	for {
		f, err := user.Read(rctx)
		if err != nil {
			t.Fatalf("no word of the lost task: %v", err)
		}
		if f.Type == chat.TypeMsg && f.FromName == "agent-1" {
			if !strings.HasPrefix(f.Content, "(interrupted: I was stopped") || f.To != "#general" {
				t.Errorf("said %q in %s", f.Content, f.To)
			}
			break
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunAgent: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("RunAgent did not return")
	}
}

// argvHolding lists the processes whose arguments hold s.
func argvHolding(t *testing.T, s string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && strings.Contains(string(b), s) {
			pids = append(pids, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return pids
}
