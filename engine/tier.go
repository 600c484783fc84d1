package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/lima-vm/lima/v2/pkg/limatype"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/atomicfile"
	"github.com/thesystem-dev/thesystem/engine/config"
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

	serviceDir string // the chat/dashboard sockets' dir, as podman sees it
	agentsDir  string // Paths.AgentsDir, as podman sees it
	projectDir string // vm.mount, as podman sees it
	initBinary string // the containers' init, as podman sees it

	chatSocket, dashSocket string // on the host
}

// newTier builds the tier for vm.driver.
func (e *Engine) newTier(logs *supervise.Logs) *tier {
	cfg, paths := e.opt.Config.Config, e.opt.Paths
	if cfg.VM.Driver != config.DriverLima {
		return &tier{
			driver:     vm.None{Socket: paths.PodmanSocket(), ProxySocketDir: paths.SocketDir()},
			serviceDir: paths.ServiceDir(), agentsDir: paths.AgentsDir(),
			projectDir: cfg.VM.Mount, initBinary: e.opt.InitBinary,
			chatSocket: paths.ChatSocket(), dashSocket: paths.DashboardSocket(),
		}
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
				{Host: paths.GuestBinDir(), Guest: vm.GuestShareDir + "/bin"},
			},
		})
	}
	return &tier{
		driver: l, lima: l,
		serviceDir: vm.GuestServiceDir, agentsDir: vm.GuestShareDir + "/agents",
		projectDir: vm.GuestProjectDir, initBinary: vm.GuestShareDir + "/bin/thesystem",
		chatSocket: filepath.Join(paths.VMForwardDir(), "chat.sock"), dashSocket: filepath.Join(paths.VMForwardDir(), "dashboard.sock"),
	}
}

// vmSpec is the stack's first container-tier component: the host's podman
// service (vm.driver none), or the Lima VM with podman in it.
func (e *Engine) vmSpec(logs *supervise.Logs) supervise.Spec {
	t := e.tier
	podmanUp := supervise.ProbeFunc(func(ctx context.Context) error { _, err := sandbox.Connect(ctx, t.driver.PodmanSocket()); return err })
	if t.lima == nil {
		argv := append(append([]string{"podman"}, e.opt.PodmanArgs...), "system", "service", "--time", "0", "unix://"+t.driver.PodmanSocket())
		return supervise.Spec{
			Name:    api.ComponentVM,
			Service: &supervise.ProcService{Name: api.ComponentVM, Argv: argv, Logs: logs},
			Ready:   podmanUp, Live: podmanUp,
			ReadyTimeout: 30 * time.Second, LiveInterval: 10 * time.Second,
		}
	}
	return supervise.Spec{
		Name:    api.ComponentVM,
		Service: supervise.ServiceFunc(func(ctx context.Context) error { return e.runVM(ctx, logs) }),
		Ready:   podmanUp, Live: podmanUp,
		// Creating the VM downloads its image and provisions podman.
		ReadyTimeout: 20 * time.Minute, LiveInterval: 30 * time.Second,
	}
}

// healInterval is how often the VM's forwards are checked.
const healInterval = 5 * time.Second

// runVM starts the Lima VM (creating it the first time), keeps its socket
// forwards alive (they die when the host sleeps), and stops the VM when
// the stack stops.
func (e *Engine) runVM(ctx context.Context, logs *supervise.Logs) error {
	l := e.tier.lima
	note := func(format string, a ...any) {
		logs.Append(supervise.Line{Component: api.ComponentVM, Stream: "supervisor", Text: fmt.Sprintf(format, a...)})
	}
	if err := e.stageGuestBinary(); err != nil {
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

// stageGuestBinary copies the linux init binary where the VM sees it.
func (e *Engine) stageGuestBinary() error {
	src := e.opt.InitBinary
	if src == "" {
		return errors.New("no linux build of thesystem for the VM's containers")
	}
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("the linux build of thesystem for the VM: %w", err)
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	if len(b) < 4 || string(b[:4]) != "\x7fELF" {
		return fmt.Errorf("%s is not a linux binary; the VM's containers need one", src)
	}
	dst := filepath.Join(e.opt.Paths.GuestBinDir(), "thesystem")
	if old, err := os.ReadFile(dst); err == nil && sha256.Sum256(old) == sha256.Sum256(b) {
		return nil
	}
	if err := os.MkdirAll(e.opt.Paths.GuestBinDir(), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(dst, b, 0o755)
}

// writeAgentToken writes an agent's token in a dir of its own for this
// run (a new path each time, so no file cache in the VM can serve an old
// one), removes the earlier runs', and returns the dir as podman sees it.
func (e *Engine) writeAgentToken(name, tok string) (string, error) {
	parent := e.opt.Paths.AgentDir(name)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
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
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	tokFile := filepath.Join(dir, sandbox.TokenFile)
	if err := atomicfile.Write(tokFile, []byte(tok+"\n"), 0o400); err != nil {
		return "", err
	}
	if e.tier.lima == nil {
		// Rootful podman on this host: the agent's uid must read it. In the
		// VM, the sshfs mount serves it as this user's to every guest uid.
		for _, p := range []string{parent, dir, tokFile} {
			if err := os.Chown(p, agentUID, agentGID); err != nil {
				return "", fmt.Errorf("token for %s: %w", name, err)
			}
		}
	}
	return filepath.Join(e.tier.agentsDir, name, run), nil
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
