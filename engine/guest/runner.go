package guest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
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
	// Mission is prepended to every prompt.
	Mission string
	// Argv is the runtime; the prompt is appended as its last argument
	// (claude -p …).
	Argv []string
	// Env is the runtime's environment.
	Env []string
	// Timeout bounds one run of the runtime; 0 means 10 minutes.
	Timeout time.Duration
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
	for {
		f, err := c.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("chat connection lost: %w", err)
		}
		if f.Type != chat.TypeMsg || f.From == me {
			continue
		}
		direct := f.To == me
		if !direct && !strings.Contains(f.Content, "@"+opt.Name) {
			continue
		}
		reply := f.To
		if direct {
			reply = f.From
		}
		logf("task from %s in %s", f.FromName, f.To)
		opt.Env = RefreshToken(opt.Env)
		answer := runOnce(ctx, opt, f)
		if err := c.Say(ctx, reply, answer); err != nil {
			return err
		}
	}
}

// runOnce runs the runtime with the mission and the message as its prompt.
func runOnce(ctx context.Context, opt RunnerOptions, f chat.Frame) string {
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	prompt := strings.TrimSpace(fmt.Sprintf("%s\n\nMessage from %s in %s:\n%s", opt.Mission, f.FromName, f.To, f.Content))
	if len(prompt) > maxArgPrompt {
		// One argument may not be longer than 128 KiB (Linux's
		// MAX_ARG_STRLEN); a long task goes in a file the runtime reads.
		path, err := taskFile(prompt)
		if err != nil {
			return fmt.Sprintf("(the task, %d bytes, could not be handed to the runtime: %v)", len(prompt), err)
		}
		prompt = fmt.Sprintf("Your task is long, so it is in the file %s (%d bytes): read all of it first, then do what it says.", path, len(prompt))
	}
	argv := append(append([]string(nil), opt.Argv...), prompt)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = opt.Env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	answer := strings.TrimSpace(out.String())
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return fmt.Sprintf("(the runtime failed with %v: %s)", err, lastLine(errb.String()))
	case err != nil:
		return fmt.Sprintf("(the runtime could not run: %v)", err)
	case answer == "":
		return "(no answer)"
	}
	return answer
}

// maxArgPrompt is the longest prompt passed as the runtime's argument.
const maxArgPrompt = 96 << 10

// taskFile writes a long prompt where the runtime can read it: the
// container's /tmp (its own tmpfs).
func taskFile(prompt string) (string, error) {
	f, err := os.CreateTemp("", "task-*.md")
	if err != nil {
		return "", err
	}
	if _, err := f.WriteString(prompt + "\n"); err != nil {
		_ = f.Close()
		return "", err
	}
	return f.Name(), f.Close()
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
