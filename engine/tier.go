package engine

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/lima-vm/lima/v2/pkg/limatype"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/atomicfile"
	"github.com/thesystem-dev/thesystem/engine/chat"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/guest"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
	"github.com/thesystem-dev/thesystem/engine/supervise"
	"github.com/thesystem-dev/thesystem/engine/vm"
)

// tier is where the containers run, as the engine sees it: the VM driver,
// the paths podman uses for the containers' mounts (the guest's, with a
// VM), and the host sockets the loopback relays dial.
type tier struct {
	// driver gives the host path of the podman API (PodmanSocket) and
	// the proxy socket's dir as podman sees it (ProxyDir).
	driver vm.Driver
	lima   *vm.Lima // nil with vm.driver none

	serviceDir string // the chat socket's dir, as podman sees it (agents too)
	dashDir    string // the dashboard socket's dir, as podman sees it
	agentsDir  string // Paths.AgentsDir, as podman sees it
	projectDir string // vm.mount, as podman sees it
	initBinary string // the containers' init, as podman sees it
	// ids maps the containers' ids to host ids no account has (rootful
	// podman on this host); zero in the VM, whose guest has no other users.
	ids sandbox.IDMap

	chatSocket, dashSocket string // on the host

	// probeTimeout bounds one health check of a service in the tier: with
	// a VM it crosses the host's relay, an SSH forward and the guest, all
	// of which a loaded machine slows down.
	probeTimeout time.Duration
	// startTimeout bounds a container's start until it is ready: in the
	// VM the first ones also set up the guest's podman storage, which a
	// VM without hardware virtualization (TCG) takes minutes for.
	startTimeout time.Duration
}

// newTier builds the tier for vm.driver.
func (e *Engine) newTier(logs *supervise.Logs) (*tier, error) {
	cfg, paths := e.opt.Config.Config, e.opt.Paths
	if cfg.VM.Driver != config.DriverLima {
		t := &tier{
			driver:     vm.None{Socket: paths.PodmanSocket(), ProxySocketDir: paths.SocketDir()},
			serviceDir: paths.ServiceDir(), dashDir: paths.DashboardDir(), agentsDir: paths.AgentsDir(),
			projectDir: cfg.VM.Mount, initBinary: e.opt.InitBinary,
			chatSocket: paths.ChatSocket(), dashSocket: paths.DashboardSocket(),
			probeTimeout: localProbeTimeout, startTimeout: localStartTimeout,
		}
		if os.Geteuid() == 0 { // rootful podman: the agents' uid must be no one's here
			base, err := sandbox.FreeIDBase(sandbox.IDFiles{})
			if err != nil {
				return nil, fmt.Errorf("the containers' ids: %w", err)
			}
			t.ids = sandbox.IDMap{Base: base}
		}
		return t, nil
	}
	inst := "thesystem-" + e.stackName()
	home := paths.LimaHome()
	logw := logs.Writer(api.ComponentVM, "limactl")
	l := &vm.Lima{
		Instance: inst, Home: home, StartTimeout: e.opt.VMStartTimeout,
		Runner: vm.ExecRunner{Path: e.opt.Limactl, Home: home, Log: logw},
		SSH:    vm.ExecRunner{Path: "ssh", Home: home},
	}
	l.Forwards = vm.SocketForwards(paths.ProxySocket(), l.PodmanSocket(), paths.VMForwardDir())
	l.Template = func() (*limatype.LimaYAML, error) {
		env, _ := sandbox.ForwardEnv(os.Environ())
		return vm.Template(cfg, vm.TemplateOptions{
			Images: e.opt.VMImages, Forwards: l.Forwards, Env: env,
			Mounts: []vm.Mount{
				{Host: paths.AgentsDir(), Guest: vm.GuestShareDir + "/agents"},
			},
		})
	}
	return &tier{
		driver: l, lima: l,
		serviceDir: vm.GuestServiceDir, dashDir: vm.GuestDashboardDir, agentsDir: vm.GuestShareDir + "/agents",
		projectDir: vm.GuestProjectDir, initBinary: vm.GuestInitBinary,
		chatSocket: filepath.Join(paths.VMForwardDir(), "chat.sock"), dashSocket: filepath.Join(paths.VMForwardDir(), "dashboard.sock"),
		probeTimeout: vmProbeTimeout, startTimeout: vmStartTimeout,
	}, nil
}

// How long one health check of a service in the tier may take: on this
// host, and in the VM (see tier.probeTimeout; measured in README).
const (
	localProbeTimeout = 2 * time.Second
	vmProbeTimeout    = 10 * time.Second
)

// How long a container of the tier may take to become ready.
const (
	localStartTimeout = time.Minute
	vmStartTimeout    = 5 * time.Minute
)

// vmSpec is the stack's first container-tier component: the host's podman
// service (vm.driver none), or the Lima VM with podman in it.
func (e *Engine) vmSpec(logs *supervise.Logs) supervise.Spec {
	t := e.tier
	podmanUp := supervise.ProbeFunc(func(ctx context.Context) error { _, err := sandbox.Connect(ctx, t.driver.PodmanSocket()); return err })
	if t.lima == nil {
		argv := append(append([]string{"podman"}, e.opt.PodmanArgs...), "system", "service", "--time", "0", "unix://"+t.driver.PodmanSocket())
		return supervise.Spec{
			Name:    api.ComponentVM,
			Service: &supervise.ProcService{Name: api.ComponentVM, Argv: argv, Env: sandbox.PodmanEnv(os.Environ(), e.opt.PodmanConf), Logs: logs},
			Ready:   podmanUp, Live: podmanUp,
			ReadyTimeout: 30 * time.Second, LiveInterval: 10 * time.Second,
		}
	}
	// The containers' init is staged in the VM once it runs: until then
	// nothing may start a container.
	var staged atomic.Bool
	return supervise.Spec{
		Name:    api.ComponentVM,
		Service: supervise.ServiceFunc(func(ctx context.Context) error { return e.runVM(ctx, logs, &staged) }),
		Ready: supervise.ProbeFunc(func(ctx context.Context) error {
			if !staged.Load() {
				return errors.New("the VM is starting")
			}
			return podmanUp(ctx)
		}),
		Live: podmanUp,
		// Creating the VM downloads its image and provisions podman.
		ReadyTimeout: 20 * time.Minute, LiveInterval: 30 * time.Second,
	}
}

// healInterval is how often the VM's forwards are checked.
const healInterval = 5 * time.Second

// runVM starts the Lima VM (creating it the first time), keeps its socket
// forwards alive (they die when the host sleeps), and stops the VM when
// the stack stops.
func (e *Engine) runVM(ctx context.Context, logs *supervise.Logs, staged *atomic.Bool) error {
	l := e.tier.lima
	note := func(format string, a ...any) {
		logs.Append(supervise.Line{Component: api.ComponentVM, Stream: "supervisor", Text: fmt.Sprintf(format, a...)})
	}
	staged.Store(false)
	initBinary, err := e.guestInit()
	if err != nil {
		return supervise.Permanent(err)
	}
	for _, d := range []string{e.opt.Paths.AgentsDir(), e.opt.Paths.VMForwardDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return supervise.Permanent(err)
		}
	}
	st, err := l.Status(ctx)
	if err != nil {
		return supervise.Permanent(err)
	}
	switch st.State {
	case vm.StateMissing:
		supervise.Report(ctx, "creating the VM %s (first start: image and podman, a few minutes)", l.Instance)
	case vm.StateBroken:
		return supervise.Permanent(fmt.Errorf("VM %s is broken (%s): run `thesystem destroy`, then `thesystem start` to rebuild it", l.Instance, st.Detail))
	default:
		supervise.Report(ctx, "starting the VM %s", l.Instance)
	}
	start := time.Now()
	if err := l.Start(ctx); err != nil {
		if errors.Is(err, vm.ErrNoLimactl) {
			return supervise.Permanent(err)
		}
		return err
	}
	note("VM %s running after %s", l.Instance, time.Since(start).Round(100*time.Millisecond))
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		defer cancel()
		if err := l.Stop(stopCtx); err != nil {
			note("stopping the VM: %v", err)
		}
	}()
	t0 := time.Now()
	copied, err := l.Stage(ctx, initBinary, vm.GuestInitBinary)
	if err != nil {
		return err
	}
	if copied {
		note("copied the containers' init into the VM in %s", time.Since(t0).Round(100*time.Millisecond))
	}
	staged.Store(true)
	heal := func() {
		healed, err := l.Heal(ctx)
		if len(healed) > 0 {
			note("repaired %d forwards that had died: %v", len(healed), healed)
		}
		if err != nil && ctx.Err() == nil {
			note("repairing the VM's forwards: %v", err)
		}
	}
	heal() // Lima may have set a forward up before the guest's dir existed
	t := time.NewTicker(healInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			heal()
		}
	}
}

// guestInit is the linux build of thesystem that the VM's containers run
// as their init, checked to be one.
func (e *Engine) guestInit() (string, error) {
	src := e.opt.InitBinary
	if src == "" {
		return "", errors.New("no linux build of thesystem for the VM's containers")
	}
	f, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("the linux build of thesystem for the VM: %w", err)
	}
	defer func() { _ = f.Close() }()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil || string(magic[:]) != "\x7fELF" {
		return "", fmt.Errorf("%s is not a linux binary; the VM's containers need one", src)
	}
	return src, nil
}

// writeAgentToken writes an agent's token in a dir of its own for this
// run (a new path each time, so no file cache in the VM can serve an old
// one), removes the earlier runs', and returns the dir as podman sees it.
func (e *Engine) writeAgentToken(name, tok string, chatKey ed25519.PrivateKey) (string, error) {
	uid, gid := e.tokenOwner()
	parent := e.opt.Paths.AgentDir(name)
	if err := mkdirOwned(parent, uid, gid); err != nil {
		return "", fmt.Errorf("token for %s: %w", name, err)
	}
	if old, err := os.ReadDir(parent); err == nil {
		for _, o := range old {
			_ = os.RemoveAll(filepath.Join(parent, o.Name()))
		}
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	run := hex.EncodeToString(r[:])
	dir := filepath.Join(parent, run)
	if err := mkdirOwned(dir, uid, gid); err != nil {
		return "", fmt.Errorf("token for %s: %w", name, err)
	}
	if err := e.writeTokenFile(dir, tok); err != nil {
		return "", fmt.Errorf("token for %s: %w", name, err)
	}
	if chatKey != nil { // its chat identity, beside the token, nowhere else
		if err := chat.WriteKey(filepath.Join(dir, guest.IdentityFile), chatKey, 0o400, uid, gid); err != nil {
			return "", fmt.Errorf("chat identity for %s: %w", name, err)
		}
	}
	return filepath.Join(e.tier.agentsDir, name, run), nil
}

// mkdirOwned makes dir (0755) and gives it to uid:gid (-1: keep ours).
func mkdirOwned(dir string, uid, gid int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if uid >= 0 {
		return os.Chown(dir, uid, gid)
	}
	return nil
}

// writeTokenFile writes tok as the token file in an agent's token dir,
// readable by the agent only.
func (e *Engine) writeTokenFile(dir, tok string) error {
	uid, gid := e.tokenOwner()
	return atomicfile.WriteOwned(filepath.Join(dir, guest.TokenFile), []byte(tok+"\n"), 0o400, uid, gid)
}

// tokenOwner is who must own the files handed to the containers (token
// dirs, sockets' dirs, keys): the agents' uid as the host sees it with
// podman on this host; in the VM, the sshfs mount serves them as this
// user's to every guest uid (-1: keep ours).
func (e *Engine) tokenOwner() (uid, gid int) {
	if e.tier.lima != nil {
		return -1, -1
	}
	return e.tier.ids.Host(agentUID), e.tier.ids.Host(agentGID)
}

// deliverToken replaces the token in the agent's current token dir; its
// runner reads the file before each run, so a rotated token reaches a
// running agent (with the VM, through the sshfs mount's cache: within
// its timeout).
func (e *Engine) deliverToken(name, tok string) error {
	parent := e.opt.Paths.AgentDir(name)
	runs, err := os.ReadDir(parent)
	if err != nil {
		return fmt.Errorf("token for %s: %w", name, err)
	}
	for _, r := range runs {
		if !r.IsDir() {
			continue
		}
		if err := e.writeTokenFile(filepath.Join(parent, r.Name()), tok); err != nil {
			return fmt.Errorf("token for %s: %w", name, err)
		}
	}
	return nil
}

// destroyVM deletes the VM (its disk holds the containers, workspaces and
// images) and what the host kept for it.
func (e *Engine) destroyVM(ctx context.Context) error {
	if err := e.tier.lima.Delete(ctx); err != nil {
		return fmt.Errorf("delete the VM: %w", err)
	}
	paths := e.opt.Paths
	for _, d := range []string{paths.GuestBinDir(), paths.AgentsDir(), paths.VMForwardDir()} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	if e.opt.RuntimeBinary == "" {
		return os.RemoveAll(paths.RuntimesDir())
	}
	return nil
}
