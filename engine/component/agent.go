package component

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/chat"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/guest"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
	"github.com/thesystem-dev/thesystem/engine/supervise"
)

// Tokens issue and revoke the agents' proxy tokens (the proxy's).
type Tokens interface {
	Issue(agent string) (string, error)
	Revoke(agent string)
}

// Agent is one agent: for each run a fresh token and chat key in a token
// dir of its own, its container created, started and waited on; a stop
// revokes both and removes the container (the workspace volume stays).
type Agent struct {
	Env
	Name, Backend string
	// Model is the model its runtime asks for ("" for the runtime's own
	// default).
	Model  string
	Swarm  *Swarm
	Tokens Tokens
	Chat   *UserChat
	// RemoteAway, with a remote chat server (mode client), says why it
	// could not be reached at some time since the given one: an agent
	// that lost it waits for it, however long, instead of being given up
	// on (even when it is back by the time the agent's exit is seen).
	RemoteAway func(context.Context, time.Time) error

	current atomic.Pointer[string] // the container's id
}

// ContainerID is the agent's container while it runs.
func (a *Agent) ContainerID() (string, bool) {
	if id := a.current.Load(); id != nil {
		return *id, true
	}
	return "", false
}

// Diff is what the agent changed in its working copy, as it says when the
// user asks ("/diff", between its tasks); with stat, its commits and
// the files with their line counts, not the diff itself.
func (a *Agent) Diff(ctx context.Context, stat bool) (string, error) {
	if _, ok := a.ContainerID(); !ok {
		return "", &Error{NotRunning, a.Name + " is not running: `thesystem start`"}
	}
	if stat {
		return a.Chat.AskAgent(ctx, a.Name, "/diff --stat")
	}
	return a.Chat.AskAgent(ctx, a.Name, "/diff")
}

// Files are the files the agent changed on its branch (it answers at
// once, even while it works).
func (a *Agent) Files(ctx context.Context) ([]string, error) {
	if _, ok := a.ContainerID(); !ok {
		return nil, &Error{NotRunning, a.Name + " is not running"}
	}
	answer, err := a.Chat.AskAgent(ctx, a.Name, "/files")
	if err != nil {
		return nil, err
	}
	head, list, _ := strings.Cut(answer, "\n")
	if !strings.HasPrefix(head, guest.FilesPrefix) {
		return nil, &Error{Unavailable, a.Name + ": " + answer}
	}
	var files []string
	for _, f := range strings.Split(list, "\n") {
		if f != "" {
			files = append(files, f)
		}
	}
	return files, nil
}

// Bundle writes the agent's branch as a git bundle to w: the agent makes
// it in its working copy (the user asks it, "/bundle"), and it is copied
// out of the container through podman (no host path: the same with a VM).
// It returns the branch and its commit.
func (a *Agent) Bundle(ctx context.Context, w io.Writer) (branch, commit string, err error) {
	id, ok := a.ContainerID()
	if !ok {
		return "", "", &Error{NotRunning, a.Name + " is not running: `thesystem start`"}
	}
	answer, err := a.Chat.AskAgent(ctx, a.Name, "/bundle")
	if err != nil {
		return "", "", err
	}
	f := strings.Fields(strings.TrimPrefix(answer, guest.BundleReady))
	if !strings.HasPrefix(answer, guest.BundleReady) || len(f) != 3 {
		return "", "", &Error{Unavailable, fmt.Sprintf("%s: %s", a.Name, answer)}
	}
	p, err := a.connect(ctx)
	if err != nil {
		return "", "", err
	}
	if err := p.CopyFileOut(id, f[0], w); err != nil {
		return "", "", err
	}
	return f[1], f[2], nil
}

// Spec is the agent's component: it depends on the swarm, and is ready
// once its container runs.
func (a *Agent) Spec() supervise.Spec {
	return supervise.Spec{
		Name: a.Name, DependsOn: []string{api.ComponentSwarm},
		Service: supervise.ServiceFunc(a.serve),
		Ready: supervise.ProbeFunc(func(ctx context.Context) error {
			id := a.current.Load()
			if id == nil {
				return errors.New("not created")
			}
			p, err := a.connect(ctx)
			if err != nil {
				return err
			}
			ok, err := p.Running(*id)
			switch {
			case err != nil:
				return fmt.Errorf("container: %w", err)
			case !ok:
				return errors.New("container not running")
			}
			return nil
		}),
		ReadyTimeout: a.Layout.StartTimeout,
	}
}

func (a *Agent) serve(ctx context.Context) error {
	name := a.Name
	if runtimeCommand(a.Backend) == "" {
		return supervise.Permanent(fmt.Errorf("backend %s: its runtime cannot run in the agents' sandbox (it needs node, which the image does not have); use backend codex or claude", a.Backend))
	}
	ref, ok := a.Swarm.Image()
	if !ok {
		return errors.New("no agent image yet")
	}
	p, err := a.connect(ctx)
	if err != nil {
		return err
	}
	tok, err := a.Tokens.Issue(name)
	if err != nil {
		return err
	}
	defer a.Tokens.Revoke(name)
	var key ed25519.PrivateKey
	if a.Config.Config.Mode == config.ModeClient {
		// A remote server: the agent's lasting identity, which its admin
		// admits (or an open server takes as proved).
		if key, err = chat.LoadOrCreateKey(a.Paths.AgentIdentity(name)); err != nil {
			return fmt.Errorf("%s's chat identity: %w", name, err)
		}
	} else {
		if key, err = a.Chat.AdmitAgent(ctx, name); err != nil {
			return err
		}
		defer func() {
			if err := a.Chat.RevokeAgent(name); err != nil {
				a.note(name, err.Error())
			}
		}()
	}
	tokDir, err := a.writeAgentToken(ctx, name, tok, key)
	if err != nil {
		return err
	}
	cfg := a.Config.Config
	env, dropped := sandbox.ForwardEnv(os.Environ())
	for _, d := range dropped {
		a.note(name, fmt.Sprintf("not forwarded: %s (%s)", d.Name, d.Reason))
	}
	env = append(env, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1")
	// The runner keeps the conversation in the workspace (the runtimes
	// keep their sessions under $HOME, the workspace too): each task
	// continues it.
	argv := []string{guest.InitPath, "sandbox-agent", "--name", name, "--channels", strings.Join(cfg.Channels, ","),
		"--session-file", guest.WorkspaceDir + "/.thesystem/session", "--max-hops", strconv.Itoa(cfg.Swarm.MaxHops),
		"--runtime", runtimeCommand(a.Backend)}
	if key != nil {
		argv = append(argv, "--identity", guest.AgentDir+"/"+guest.IdentityFile)
	}
	if a.Layout.ProjectDir != "" { // its own working copy, on its own branch
		argv = append(argv, "--project", sandbox.ProjectPath(a.Layout.ProjectShared))
	}
	mission := cfg.Swarm.Mission
	if cfg.Swarm.MissionFile != "" {
		b, err := os.ReadFile(cfg.Swarm.MissionFile)
		if err != nil {
			return supervise.Permanent(fmt.Errorf("swarm.mission_file: %w", err))
		}
		mission = string(b)
	}
	ask := cfg.Swarm.Permissions == config.PermissionsAsk
	if ask {
		argv = append(argv, "--ask")
	}
	runtime := runtimeArgv(a.Backend, a.Model, mission, ask)
	argv = append(append(argv, "--"), runtime...)
	id, err := p.CreateAgent(sandbox.AgentSpec{
		Agent: name, Stack: a.Stack, Image: ref, InitBinary: a.Layout.InitBinary,
		SocketDir: a.Layout.ProxyDir, ServiceDir: a.Layout.ServiceDir, AgentDir: tokDir, ProjectDir: a.Layout.ProjectDir, ProjectShared: a.Layout.ProjectShared,
		Workspace: "thesystem-" + a.Stack + "-" + name, Argv: argv, Env: env,
		User: fmt.Sprintf("%d:%d", agentUID, agentGID), IDs: a.Layout.IDs,
	})
	if err != nil {
		return err
	}
	a.current.Store(&id)
	started := time.Now()
	err = a.runContainer(ctx, p, id, name)
	if a.RemoteAway != nil && ctx.Err() == nil {
		if away := a.RemoteAway(ctx, started); away != nil {
			return supervise.Waiting(fmt.Errorf("%w (the chat server is away: %w)", err, away))
		}
	}
	return err
}

// runtimeArgv is how a backend's runtime runs one task (the runner adds
// the conversation and the prompt): its events as they come (the runner
// posts what it does as progress), the model when one is set, the mission
// as its system prompt. With ask, it keeps its own permission checks,
// which in a task with no one to answer means it can neither edit nor run
// anything; else the container is the boundary (no network, no keys, a
// read-only root, every capability dropped) and it works without asking.
func runtimeArgv(backend, model, mission string, ask bool) []string {
	if backend == config.BackendCodex {
		argv := []string{"codex", "exec", "--json", "--skip-git-repo-check", "--color", "never",
			// Nothing to update from, and no one to tell.
			"-c", "check_for_update_on_startup=false", "-c", "analytics.enabled=false"}
		if ask {
			argv = append(argv, "--sandbox", "read-only")
		} else {
			argv = append(argv, "--dangerously-bypass-approvals-and-sandbox")
		}
		if model != "" {
			argv = append(argv, "--model", model)
		}
		if mission != "" {
			argv = append(argv, "-c", "developer_instructions="+guest.TOMLString(mission))
		}
		return argv
	}
	argv := []string{"claude", "-p", "--output-format", "stream-json", "--verbose"}
	if !ask {
		argv = append(argv, "--dangerously-skip-permissions")
	}
	if model != "" {
		argv = append(argv, "--model", model)
	}
	if mission != "" {
		argv = append(argv, "--append-system-prompt", mission)
	}
	return argv
}
