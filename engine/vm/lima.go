package vm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lima-vm/lima/v2/pkg/limatype"

	"github.com/thesystem-dev/thesystem/engine/sandbox"
)

// State of a VM.
type State string

// States.
const (
	StateMissing State = "missing"
	StateStopped State = "stopped"
	StateRunning State = "running"
	StateBroken  State = "broken"
)

// Status is a VM's state with detail.
type Status struct {
	State  State  `json:"state"`
	Detail string `json:"detail,omitempty"`
}

// Runner runs limactl; tests substitute a recorded one.
type Runner interface {
	Run(ctx context.Context, args ...string) ([]byte, error)
}

// ExecRunner runs the limactl binary with LIMA_HOME set, every call with
// the caller's deadline, its output copied to Log.
type ExecRunner struct {
	Path string // "" means FindLimactl
	Home string // LIMA_HOME: private, under the state dir
	Log  io.Writer
}

// ErrNoLimactl is returned when limactl is not installed.
var ErrNoLimactl = errors.New("limactl not found: install Lima (macOS: brew install lima) or set vm.driver: none")

// FindLimactl finds limactl: bundled beside the running binary, symlinks
// resolved (the app ships it as Contents/MacOS/limactl, beside TheSystem,
// where the CLI link Contents/Resources/bin/thesystem leads), else on PATH.
func FindLimactl(executable func() (string, error), lookPath func(string) (string, error)) (string, error) {
	if self, err := executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(self); err == nil {
			bundled := filepath.Join(filepath.Dir(resolved), "limactl")
			if fi, err := os.Stat(bundled); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
				return bundled, nil
			}
		}
	}
	if p, err := lookPath("limactl"); err == nil {
		return p, nil
	}
	return "", ErrNoLimactl
}

// DefaultCallTimeout bounds a call whose context has no deadline.
const DefaultCallTimeout = 5 * time.Minute

// SSHRunner runs ssh, with a stdin for RunInput; tests substitute a
// recorded one.
type SSHRunner interface {
	Runner
	RunInput(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error)
}

// Run runs limactl args.
func (r ExecRunner) Run(ctx context.Context, args ...string) ([]byte, error) {
	return r.RunInput(ctx, nil, args...)
}

// RunInput runs it with stdin.
func (r ExecRunner) RunInput(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	path := r.Path
	if path == "" {
		p, err := FindLimactl(os.Executable, exec.LookPath)
		if err != nil {
			return nil, err
		}
		path = p
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(limactlEnv(os.Environ()), "LIMA_HOME="+r.Home)
	cmd.Stdin = stdin
	// A child of limactl that keeps our pipes open must not hold us past
	// the deadline.
	cmd.WaitDelay = 2 * time.Second
	var out bytes.Buffer
	// One writer for both: exec then copies from a single pipe, so
	// nothing writes to out twice at once.
	var w io.Writer = &out
	if r.Log != nil {
		w = io.MultiWriter(&out, r.Log)
	}
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		// It exited, leaving a child of its own (ssh -f) with our pipes.
		err = nil
	}
	if errors.Is(err, exec.ErrNotFound) {
		return nil, ErrNoLimactl
	}
	return out.Bytes(), err
}

// limactlEnv is what limactl and ssh get of the engine's environment:
// what they need to run (PATH, HOME, the user, the terminal, the locale,
// temp and runtime dirs, SSH's agent socket, QEMU and Lima settings), never
// a key, a token or a proxy URL with credentials that the user's shell had.
func limactlEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "LIMA_HOME":
		case slices.Contains([]string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "TZ", "TMPDIR", "XDG_RUNTIME_DIR", "SSH_AUTH_SOCK"}, name),
			strings.HasPrefix(name, "LC_"), strings.HasPrefix(name, "QEMU_"), strings.HasPrefix(name, "LIMA_"), strings.HasPrefix(name, "_LIMA"):
			out = append(out, kv)
		}
	}
	return out
}

// Lima is vm.driver lima.
type Lima struct {
	Instance string
	Home     string // LIMA_HOME
	Runner   Runner
	// Template is the instance's configuration, written (validated) on
	// create.
	Template func() (*limatype.LimaYAML, error)
	// StartTimeout bounds create+start; 0 means 10 minutes.
	StartTimeout time.Duration
	// Forwards are the template's socket forwards, which Heal checks.
	Forwards []Forward
	// SSH runs ssh (with Lima's ssh.config) to heal forwards and stage
	// files.
	SSH SSHRunner

	opt Options // the stack's, when it is the stack's tier (New)
}

// Name is "lima".
func (*Lima) Name() string { return "lima" }

// ProxyDir is where the host's proxy socket is forwarded in the guest.
func (*Lima) ProxyDir() string { return GuestSocketDir }

// PodmanSocket is where the guest's podman socket is forwarded.
func (l *Lima) PodmanSocket() string {
	return filepath.Join(l.Home, l.Instance, "sock", "podman.sock")
}

// Status reads `limactl list --json`.
func (l *Lima) Status(ctx context.Context) (Status, error) {
	out, err := l.Runner.Run(ctx, "list", "--json")
	if err != nil {
		return Status{}, limaError("list", out, err)
	}
	// One JSON object per line and instance, among limactl's log lines
	// (stderr); each holds the whole config, so lines can be long.
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		var inst struct {
			Name    string   `json:"name"`
			Status  string   `json:"status"`
			Errors  []string `json:"errors"`
			Message string   `json:"message"`
		}
		if !bytes.HasPrefix(sc.Bytes(), []byte("{")) || json.Unmarshal(sc.Bytes(), &inst) != nil || inst.Name != l.Instance {
			continue
		}
		switch inst.Status {
		case "Running":
			return Status{State: StateRunning}, nil
		case "Stopped":
			return Status{State: StateStopped}, nil
		default:
			return Status{State: StateBroken, Detail: strings.TrimSpace(inst.Status + " " + strings.Join(inst.Errors, "; "))}, nil
		}
	}
	if err := sc.Err(); err != nil {
		return Status{}, fmt.Errorf("limactl list --json: %w", err)
	}
	return Status{State: StateMissing}, nil
}

// Start creates the instance from the template if it is missing, then
// starts it and waits for Lima's readiness (podman provisioned).
func (l *Lima) Start(ctx context.Context) error {
	timeout := l.StartTimeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := l.Status(ctx)
	if err != nil {
		return err
	}
	switch st.State {
	case StateRunning:
		return nil
	case StateBroken:
		return fmt.Errorf("VM %s is broken (%s): run `thesystem destroy`, then `thesystem start` to rebuild it", l.Instance, st.Detail)
	case StateMissing:
		y, err := l.Template()
		if err != nil {
			return err
		}
		path := filepath.Join(l.Home, "_templates", l.Instance+".yaml")
		if err := WriteTemplate(ctx, y, path); err != nil {
			return err
		}
		if out, err := l.Runner.Run(ctx, "create", "--tty=false", "--name="+l.Instance, path); err != nil {
			return limaError("create", out, err)
		}
	}
	if out, err := l.Runner.Run(ctx, "start", "--tty=false", l.Instance); err != nil {
		if ctx.Err() != nil {
			why := ""
			if d := l.Diagnose(context.WithoutCancel(ctx)); d != "" {
				why = " (" + d + ")"
			}
			return fmt.Errorf("VM %s did not start within %s%s; see %s: %w", l.Instance, timeout, why,
				filepath.Join(l.Home, l.Instance, "ha.stderr.log"), ctx.Err())
		}
		if onlyGuestAgentMissing(out) {
			// The engine uses neither the guest agent's port forwards (no
			// TCP port is forwarded) nor Lima's file sharing (none): a VM
			// that runs without it is one the stack can use; its own
			// readiness (podman answering through the forwarded socket)
			// decides.
			if st, serr := l.Status(ctx); serr == nil && st.State == StateRunning {
				note(l.opt, "the VM runs without Lima's guest agent (limactl called it degraded), which TheSystem does not use: going on")
				return nil
			}
		}
		return limaError("start", out, err)
	}
	if st, err := l.Status(ctx); err != nil || st.State != StateRunning {
		return fmt.Errorf("VM %s is %s after start (%s)", l.Instance, st.State, st.Detail)
	}
	return nil
}

// Heal checks the forwards and, when one died, sets them all up again,
// over a new SSH master when needed: a guest→host forward whose host
// socket refuses means the SSH connection that carried them is gone; a
// host→guest one whose guest socket is missing was set up by Lima before
// the guest's dir existed.
func (l *Lima) Heal(ctx context.Context) ([]string, error) {
	// A check cut short by the stack stopping found nothing dead.
	if _, dead := l.deadForward(ctx); !dead || ctx.Err() != nil {
		return nil, nil
	}
	// All of them: one dead forward may be the first sign of a master
	// that is going away (or that the check itself replaced), which takes
	// the others with it.
	host := l.sshHost()
	if _, err := l.ssh(ctx, "-O", "check", host); err != nil {
		// The master is gone: a new one, in the background (Lima's config
		// has ControlMaster auto and ControlPersist).
		if out, err := l.ssh(ctx, "-f", "-N", host); err != nil {
			return nil, fmt.Errorf("ssh to the VM to repair its forwards: %w (%s)", err, strings.TrimSpace(string(out)))
		}
	}
	var healed []string
	for _, f := range l.Forwards {
		flag, spec := "-L", f.Host+":"+f.Guest
		if f.Reverse {
			flag, spec = "-R", f.Guest+":"+f.Host
		}
		_, _ = l.ssh(ctx, "-O", "cancel", flag, spec, host)
		if f.Reverse {
			_, _ = l.ssh(ctx, host, "rm", "-f", f.Guest)
		} else {
			_ = os.Remove(f.Host)
		}
		if out, err := l.ssh(ctx, "-O", "forward", flag, spec, host); err != nil {
			return healed, fmt.Errorf("forward %s: %w (%s)", f, err, strings.TrimSpace(string(out)))
		}
		healed = append(healed, f.String())
	}
	if f, dead := l.deadForward(ctx); dead {
		return healed, fmt.Errorf("forward %s is still down after repair", f)
	}
	return healed, nil
}

// Stage puts the host file src at dst on the guest's own disk (root's,
// mode 0755) over Lima's SSH, unless dst has the same content already;
// copied says whether it had to. What containers run must come from the
// guest's disk: run from the reverse-sshfs share instead, every start of
// a container pulls the binary's pages through the guest's sshd again
// (measured under TCG: 6-7 s of both vCPUs for a 50 MB binary, during
// which the guest answered a health check in up to 2 s instead of 20 ms).
func (l *Lima) Stage(ctx context.Context, src, dst string) (copied bool, err error) {
	f, err := os.Open(src)
	if err != nil {
		return false, err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if out, err := l.ssh(ctx, l.sshHost(), "sudo", "sha256sum", dst); err == nil && strings.Contains(string(out), sum) {
		return false, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	return true, l.copyIn(ctx, f, dst)
}

// copyIn writes r to dst on the guest's disk (root's, mode 0755), through
// a temporary file renamed into place: a copy cut short leaves nothing
// that looks done.
func (l *Lima) copyIn(ctx context.Context, r io.Reader, dst string) error {
	script := fmt.Sprintf("sudo mkdir -p %[1]s && sudo sh -c 'cat > %[2]s.new && chmod 0755 %[2]s.new && mv -f %[2]s.new %[2]s'", path.Dir(dst), dst)
	cfg := filepath.Join(l.Home, l.Instance, "ssh.config")
	if out, err := l.SSH.RunInput(ctx, r, "-F", cfg, l.sshHost(), script); err != nil {
		return fmt.Errorf("copy %s into the VM: %w (%s)", path.Base(dst), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// AgentImageTimeout bounds copying the runtime into the VM and building
// the agents' image there (a few seconds on a Mac; minutes under TCG).
const AgentImageTimeout = 20 * time.Minute

// GuestRuntimeDir holds the agents' runtimes on the guest's disk.
const GuestRuntimeDir = "/var/lib/thesystem/runtimes"

// AgentImage builds the agents' image inside the VM, from the guest's own
// packages (its dpkg: bash, git, ripgrep… and what they need), with the
// runtimes: each a linux package for the guest (a tarball on the host
// whose name carries its integrity, copied onto the guest's disk once), or
// a linux binary (copied when its content changed). The guest's own
// thesystem (staged by the VM component) builds it and reuses an image of
// the same packages and runtimes. Its output goes to log; it returns the
// image's name.
func (l *Lima) AgentImage(ctx context.Context, runtimes []sandbox.Runtime, log io.Writer) (string, error) {
	// Its own deadline: a call without one gets DefaultCallTimeout, and a
	// first build under emulation (TCG) can take longer than that.
	ctx, cancel := context.WithTimeout(ctx, AgentImageTimeout)
	defer cancel()
	args := []string{"sudo", GuestInitBinary, "guest-image", "--install-missing"}
	for _, rt := range runtimes {
		dst := GuestRuntimeDir + "/" + filepath.Base(rt.File)
		if rt.Package.Name == "" {
			if _, err := l.Stage(ctx, rt.File, dst); err != nil {
				return "", err
			}
			args = append(args, "--runtime", rt.Command+"="+dst)
			continue
		}
		args = append(args, "--runtime", rt.Command+"@"+rt.Package.Version+"="+dst)
		if _, err := l.ssh(ctx, l.sshHost(), "sudo", "test", "-f", dst); err == nil {
			continue // copied by an earlier start (its name carries its integrity)
		}
		if err := l.copyRuntime(ctx, rt.File, dst, log); err != nil {
			return "", err
		}
	}
	r := l.SSH
	if er, ok := r.(ExecRunner); ok {
		er.Log = log
		r = er
	}
	cfg := filepath.Join(l.Home, l.Instance, "ssh.config")
	out, err := r.Run(ctx, append([]string{"-F", cfg, l.sshHost()}, args...)...)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if err != nil {
		return "", fmt.Errorf("build the agents' image in the VM: %w (%s)", err, last)
	}
	if !strings.HasPrefix(last, sandbox.DevRepo+":") {
		return "", fmt.Errorf("build the agents' image in the VM: it said %q, not an image's name", last)
	}
	return last, nil
}

// copyRuntime copies a runtime's package onto the guest's disk.
func (l *Lima) copyRuntime(ctx context.Context, file, dst string, log io.Writer) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("the agents' runtime: %w", err)
	}
	defer func() { _ = f.Close() }()
	fmt.Fprintf(log, "copying %s into the VM\n", filepath.Base(file))
	t0 := time.Now()
	if err := l.copyIn(ctx, f, dst); err != nil {
		return err
	}
	fmt.Fprintf(log, "copied in %s\n", time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// sshHost is the instance's host name in Lima's ssh.config.
func (l *Lima) sshHost() string { return "lima-" + l.Instance }

// ssh runs ssh with Lima's ssh.config for the instance.
func (l *Lima) ssh(ctx context.Context, args ...string) ([]byte, error) {
	cfg := filepath.Join(l.Home, l.Instance, "ssh.config")
	return l.SSH.Run(ctx, append([]string{"-F", cfg}, args...)...)
}

// deadForward finds a forward that does not work: a guest→host one whose
// host socket refuses (dialled first: no SSH needed), else a host→guest
// one whose guest socket is missing.
func (l *Lima) deadForward(ctx context.Context) (Forward, bool) {
	for _, f := range l.Forwards {
		if f.Reverse {
			continue
		}
		d := net.Dialer{Timeout: 2 * time.Second}
		c, err := d.DialContext(ctx, "unix", f.Host)
		if err != nil {
			return f, true
		}
		_ = c.Close()
	}
	for _, f := range l.Forwards {
		if f.Reverse {
			if _, err := l.ssh(ctx, l.sshHost(), "test", "-S", f.Guest); err != nil {
				return f, true
			}
		}
	}
	return Forward{}, false
}

// Stop stops the instance.
func (l *Lima) Stop(ctx context.Context) error {
	st, err := l.Status(ctx)
	if err != nil || st.State != StateRunning {
		return err
	}
	if out, err := l.Runner.Run(ctx, "stop", l.Instance); err != nil {
		return limaError("stop", out, err)
	}
	return nil
}

// Delete removes the instance.
func (l *Lima) Delete(ctx context.Context) error {
	st, err := l.Status(ctx)
	if err != nil || st.State == StateMissing {
		return err
	}
	if out, err := l.Runner.Run(ctx, "delete", "--force", l.Instance); err != nil {
		return limaError("delete", out, err)
	}
	return nil
}

// onlyGuestAgentMissing says whether limactl start failed only because
// Lima's guest agent did not come up (its one error).
func onlyGuestAgentMissing(out []byte) bool {
	return strings.Contains(string(out), "Errors:[guest agent does not seem to be running; port forwards will not work]")
}

// limaError explains a failed limactl call from what it printed.
func limaError(op string, out []byte, err error) error {
	if errors.Is(err, ErrNoLimactl) {
		return err
	}
	text := string(out)
	hint := ""
	switch {
	case strings.Contains(text, "qemu-system") && (strings.Contains(text, "not found") || strings.Contains(text, "executable file not found")):
		hint = ": QEMU is not installed (macOS: brew install qemu; Linux: apt-get install qemu-system)"
	case strings.Contains(text, "no space left on device"):
		hint = ": the disk is full; free space or lower vm.disk"
	case strings.Contains(text, "DEGRADED") || strings.Contains(text, "degraded"):
		hint = ": the VM came up degraded (the guest agent or a probe failed); see `thesystem logs vm`"
	}
	last := strings.TrimSpace(text)
	if i := strings.LastIndexByte(last, '\n'); i >= 0 {
		last = last[i+1:]
	}
	return fmt.Errorf("limactl %s: %w%s (%s)", op, err, hint, last)
}
