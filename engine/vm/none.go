package vm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/thesystem-dev/thesystem/engine/sandbox"
	"github.com/thesystem-dev/thesystem/engine/supervise"
)

// None is vm.driver none: the host's podman, no firebreak. It runs the
// podman service itself.
type None struct {
	opt    Options
	layout Layout
}

// How long one health check of a service on this host may take, and a
// container's start.
const (
	localProbeTimeout = 2 * time.Second
	localStartTimeout = time.Minute
)

func newNone(opt Options) (*None, error) {
	paths := opt.Paths
	l := Layout{
		PodmanSocket: paths.PodmanSocket(),
		ProxyDir:     paths.SocketDir(), ServiceDir: paths.ServiceDir(), DashboardDir: paths.DashboardDir(),
		AgentsDir: paths.AgentsDir(), ProjectDir: opt.Config.VM.Mount, InitBinary: opt.InitBinary,
		ChatSocket: paths.ChatSocket(), DashboardSocket: paths.DashboardSocket(),
		ProbeTimeout: localProbeTimeout, StartTimeout: localStartTimeout,
		OwnerUID: agentUID, OwnerGID: agentGID,
	}
	if opt.Root { // rootful podman: the agents' uid must be no one's here
		base, err := sandbox.FreeIDBase(sandbox.IDFiles{})
		if err != nil {
			return nil, fmt.Errorf("the containers' ids: %w", err)
		}
		l.IDs = sandbox.IDMap{Base: base}
		l.OwnerUID, l.OwnerGID = l.IDs.Host(agentUID), l.IDs.Host(agentGID)
	} else { // rootless podman: the agents' uid is the user's own in the containers
		l.IDs = sandbox.IDMap{Keep: agentUID}
		l.OwnerUID, l.OwnerGID = -1, -1
	}
	return &None{opt: opt, layout: l}, nil
}

// The agents' uid and gid inside the containers.
const (
	agentUID = 1000
	agentGID = 1000
)

// Name is "none".
func (*None) Name() string { return "none" }

// Layout is the host's own paths.
func (n *None) Layout() Layout { return n.layout }

// Spec is the host's podman service, supervised.
func (n *None) Spec() supervise.Spec {
	sock := n.layout.PodmanSocket
	up := supervise.ProbeFunc(func(ctx context.Context) error { _, err := sandbox.Connect(ctx, sock); return err })
	argv := append(append([]string{"podman"}, n.opt.PodmanArgs...), "system", "service", "--time", "0", "unix://"+sock)
	return supervise.Spec{
		Name:    n.opt.Component,
		Service: &supervise.ProcService{Name: n.opt.Component, Argv: argv, Env: sandbox.PodmanEnv(os.Environ(), n.opt.PodmanConf), Logs: n.opt.Logs},
		Ready:   up, Live: up,
		ReadyTimeout: 30 * time.Second, LiveInterval: 10 * time.Second,
	}
}

// Prepare makes the services' socket dirs, the agents' uid's (the
// containers' services listen there).
func (n *None) Prepare() error {
	for _, dir := range []string{n.layout.ServiceDir, n.layout.DashboardDir} {
		if err := sandbox.MkdirOwned(dir, n.layout.OwnerUID, n.layout.OwnerGID); err != nil {
			return fmt.Errorf("services socket dir: %w", err)
		}
	}
	return nil
}

// Status is always running.
func (*None) Status(context.Context) (Status, error) {
	return Status{State: StateRunning, Detail: "no VM: host podman"}, nil
}

// Heal has nothing to heal: no links.
func (*None) Heal(context.Context) ([]string, error) { return nil, nil }

// Destroy removes the stack's containers, volumes (the agents'
// workspaces) and images from the host's podman.
func (n *None) Destroy(ctx context.Context) error {
	podman := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "podman", append(append([]string{}, n.opt.PodmanArgs...), args...)...)
		cmd.Env = sandbox.PodmanEnv(os.Environ(), n.opt.PodmanConf)
		return cmd.CombinedOutput()
	}
	label := sandbox.LabelStack + "=" + n.opt.Stack
	if out, err := podman("rm", "-af", "-t", "0", "--filter", "label="+label); err != nil {
		return fmt.Errorf("remove containers: %w: %s", err, out)
	}
	out, err := podman("volume", "ls", "-q", "--filter", "label="+label)
	if err != nil {
		return fmt.Errorf("list volumes: %w: %s", err, out)
	}
	if vols := strings.Fields(string(out)); len(vols) > 0 {
		if out, err := podman(append([]string{"volume", "rm", "-f"}, vols...)...); err != nil {
			return fmt.Errorf("remove volumes: %w: %s", err, out)
		}
	}
	out, err = podman("images", "--format", "{{.Repository}}:{{.Tag}}")
	if err != nil {
		return fmt.Errorf("list images: %w: %s", err, out)
	}
	var ours []string
	for _, ref := range strings.Fields(string(out)) {
		if strings.HasPrefix(ref, "localhost/thesystem-") {
			ours = append(ours, ref)
		}
	}
	if len(ours) > 0 {
		if out, err := podman(append([]string{"rmi", "-f"}, ours...)...); err != nil {
			return fmt.Errorf("remove images: %w: %s", err, out)
		}
	}
	return nil
}
