package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/lima-vm/lima/v2/pkg/limatype"

	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
	"github.com/thesystem-dev/thesystem/engine/supervise"
)

// How long one health check of a service in the VM may take (it crosses
// the host's relay, an SSH forward and the guest, all of which a loaded
// machine slows down; measured in README), and a container's start there
// (the first ones also set up the guest's podman storage, which a VM
// without hardware virtualization, TCG, takes minutes for).
const (
	vmProbeTimeout = 10 * time.Second
	vmStartTimeout = 10 * time.Minute
)

// healInterval is how often the VM's forwards are checked.
const healInterval = 5 * time.Second

// newLimaTier is vm.driver lima for the stack: the instance
// thesystem-<stack> in a LIMA_HOME of the state dir's, its template from
// thesystem.yaml.
func newLimaTier(opt Options) *Lima {
	paths := opt.Paths
	home := paths.LimaHome()
	l := &Lima{
		Instance: "thesystem-" + opt.Stack, Home: home, StartTimeout: opt.StartTimeout, opt: opt,
		SSH: ExecRunner{Path: "ssh", Home: home},
	}
	var logw io.Writer
	if opt.Logs != nil {
		logw = opt.Logs.Writer(opt.Component, "limactl")
	}
	l.Runner = ExecRunner{Path: opt.Limactl, Home: home, Log: logw}
	l.Forwards = SocketForwards(paths.ProxySocket(), l.PodmanSocket(), paths.VMForwardDir(), opt.Config.Mode == config.ModeClient)
	l.Template = func() (*limatype.LimaYAML, error) {
		env, _ := sandbox.ForwardEnv(os.Environ())
		return Template(opt.Config, TemplateOptions{Images: opt.Images, Forwards: l.Forwards, Env: env})
	}
	return l
}

// Layout is the guest's paths for podman, the forwarded sockets on the
// host. What goes into the guest is written there by Lima's user, the
// agents' uid: nothing to chown.
func (l *Lima) Layout() Layout {
	fwd := l.opt.Paths.VMForwardDir()
	return Layout{
		PodmanSocket: l.PodmanSocket(),
		ProxyDir:     GuestSocketDir, ServiceDir: GuestServiceDir, DashboardDir: GuestDashboardDir,
		AgentsDir: GuestAgentsDir, ProjectDir: GuestProjectShare, ProjectShared: true, InitBinary: GuestInitBinary,
		ChatSocket: filepath.Join(fwd, "chat.sock"), DashboardSocket: filepath.Join(fwd, "dashboard.sock"),
		ProbeTimeout: vmProbeTimeout, StartTimeout: vmStartTimeout,
		OwnerUID: -1, OwnerGID: -1, Files: l,
	}
}

// Prepare has nothing to do: the VM makes the services' dirs at boot.
func (*Lima) Prepare() error { return nil }

// Spec is the VM as the stack's first component: ready once podman
// answers in it and the containers' init is staged on its disk.
func (l *Lima) Spec() supervise.Spec {
	var staged atomic.Bool
	podmanUp := supervise.ProbeFunc(func(ctx context.Context) error {
		if _, err := sandbox.Connect(ctx, l.PodmanSocket()); err != nil {
			// Say why a VM that Lima calls running does not answer.
			if why := l.Diagnose(context.WithoutCancel(ctx)); why != "" {
				return fmt.Errorf("%w; %s", err, why)
			}
			return err
		}
		return nil
	})
	return supervise.Spec{
		Name:    l.opt.Component,
		Service: supervise.ServiceFunc(func(ctx context.Context) error { return l.run(ctx, &staged) }),
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

// run starts the VM (creating it the first time), copies the containers'
// init onto its disk, keeps its socket forwards alive (they die when the
// host sleeps), and stops the VM when the stack stops.
func (l *Lima) run(ctx context.Context, staged *atomic.Bool) error {
	staged.Store(false)
	initBinary, err := l.guestInit()
	if err != nil {
		return supervise.Permanent(err)
	}
	for _, d := range []string{l.opt.Paths.AgentsDir(), l.opt.Paths.VMForwardDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return supervise.Permanent(err)
		}
	}
	st, err := l.Status(ctx)
	if err != nil {
		return supervise.Permanent(err)
	}
	switch st.State {
	case StateMissing:
		supervise.Report(ctx, "creating the VM %s (first start: image and podman, a few minutes)", l.Instance)
	case StateBroken:
		return supervise.Permanent(fmt.Errorf("VM %s is broken (%s): run `thesystem destroy`, then `thesystem start` to rebuild it", l.Instance, st.Detail))
	default:
		supervise.Report(ctx, "starting the VM %s", l.Instance)
	}
	start := time.Now()
	if err := l.Start(ctx); err != nil {
		if errors.Is(err, ErrNoLimactl) {
			return supervise.Permanent(err)
		}
		return err
	}
	note(l.opt, "VM %s running after %s", l.Instance, time.Since(start).Round(100*time.Millisecond))
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		defer cancel()
		if err := l.Stop(stopCtx); err != nil {
			note(l.opt, "stopping the VM: %v", err)
		}
	}()
	t0 := time.Now()
	copied, err := l.Stage(ctx, initBinary, GuestInitBinary)
	if err != nil {
		return err
	}
	if copied {
		note(l.opt, "copied the containers' init into the VM in %s", time.Since(t0).Round(100*time.Millisecond))
	}
	if l.opt.Config.VM.Mount != "" {
		if err := l.linkProject(ctx, l.opt.Config.VM.Mount); err != nil {
			return err
		}
	}
	staged.Store(true)
	return l.healEvery(ctx, healInterval)
}

// healEvery repairs the forwards now (Lima may have set one up before the
// guest's dir existed) and every interval, until ctx ends.
func (l *Lima) healEvery(ctx context.Context, interval time.Duration) error {
	heal := func() {
		healed, err := l.Heal(ctx)
		if len(healed) > 0 {
			note(l.opt, "repaired %d forwards that had died: %v", len(healed), healed)
		}
		if err != nil && ctx.Err() == nil {
			note(l.opt, "repairing the VM's forwards: %v", err)
		}
	}
	heal()
	t := time.NewTicker(interval)
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
func (l *Lima) guestInit() (string, error) {
	src := l.opt.InitBinary
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

// Destroy deletes the VM (its disk holds the containers, workspaces and
// images) and what the host kept for it.
func (l *Lima) Destroy(ctx context.Context) error {
	if err := l.Delete(ctx); err != nil {
		return fmt.Errorf("delete the VM: %w", err)
	}
	paths := l.opt.Paths
	for _, d := range []string{paths.GuestBinDir(), paths.AgentsDir(), paths.VMForwardDir()} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return nil
}
