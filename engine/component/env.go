// Package component is the stack's components as the supervisor runs
// them, each owning its state and readiness and giving its supervise.Spec:
// the chat server (embedded or upstream) with the user's own connection
// to it, the dashboard, the swarm (which owns the agent image) and each
// agent (its token, token dir, chat key and container).
package component

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"net"

	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/relay"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
	"github.com/thesystem-dev/thesystem/engine/supervise"
	"github.com/thesystem-dev/thesystem/engine/vm"
)

// Env is what the components share: the configuration, where the
// containers run (the tier's layout), the stack's name and its logs.
type Env struct {
	Config  *config.Loaded
	Paths   config.Paths
	Layout  vm.Layout
	Stack   string
	Logs    *supervise.Logs
	Version string
}

// The agents' user in every container.
const (
	agentUID = 1000
	agentGID = 1000
)

// BaseImage is the image of the stack's own containers (the chat server,
// the dashboard): mount points only, our binary is mounted in.
const BaseImage = "localhost/thesystem-base:3"

func (e Env) connect(ctx context.Context) (*sandbox.Podman, error) {
	return sandbox.Connect(ctx, e.Layout.PodmanSocket)
}

// note appends a line of the engine's own to a component's log.
func (e Env) note(component, text string) {
	e.Logs.Append(supervise.Line{Component: component, Stream: "supervisor", Text: text})
}

// runService runs one of the stack's own containers (our binary with
// args) as the component name, its socket relayed to addr on the host's
// loopback; setting names the thesystem.yaml key to change when addr is
// taken.
func (e Env) runService(ctx context.Context, p *sandbox.Podman, name, addr, socket, ownDir, identityDir, setting string, args ...string) error {
	return e.runServiceBehind(ctx, p, name, addr, socket, ownDir, identityDir, setting, nil, args...)
}

// runServiceBehind is runService with front, when not nil, serving addr
// (and passing on to the socket what it does not answer itself) instead
// of a plain relay.
func (e Env) runServiceBehind(ctx context.Context, p *sandbox.Podman, name, addr, socket, ownDir, identityDir, setting string,
	front interface {
		Serve(context.Context, net.Listener) error
	}, args ...string) error {
	id, err := p.CreateService(sandbox.ServiceSpec{
		Name: name, Stack: e.Stack, Image: BaseImage, InitBinary: e.Layout.InitBinary,
		ServiceDir: e.Layout.ServiceDir, OwnDir: ownDir, IdentityDir: identityDir,
		User: fmt.Sprintf("%d:%d", agentUID, agentGID), IDs: e.Layout.IDs, Args: args,
	})
	if err != nil {
		return err
	}
	var ln net.Listener
	if front == nil {
		ln, err = relay.Forward(ctx, addr, socket)
	} else {
		var lc net.ListenConfig
		if ln, err = lc.Listen(ctx, "tcp", addr); err == nil {
			go func() { _ = front.Serve(ctx, ln) }()
		}
	}
	if err != nil {
		_ = p.Remove(id)
		return fmt.Errorf("%s port: %w (set %s in thesystem.yaml)", name, err, setting)
	}
	defer func() { _ = ln.Close() }()
	return e.runContainer(ctx, p, id, name)
}

// runContainer runs a created container as the component name: its
// output and the runner's notes in the component's log.
func (e Env) runContainer(ctx context.Context, p *sandbox.Podman, id, name string) error {
	return sandbox.RunContainer(ctx, p, id, sandbox.RunOptions{
		Note:        func(s string) { e.note(name, s) },
		Output:      func() io.WriteCloser { return e.Logs.Writer(name, "container") },
		StopTimeout: supervise.DefaultStopTimeout,
	})
}

// getJSON decodes a GET's JSON answer.
func getJSON(ctx context.Context, url string, timeout time.Duration, v any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Kind is what went wrong, for the engine's facade to map to the API's
// codes.
type Kind int

// Kinds of Error.
const (
	BadRequest Kind = iota + 1
	NotFound
	NotRunning
	Unavailable
)

// Error is a component's answer to a request that could not be done.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }
