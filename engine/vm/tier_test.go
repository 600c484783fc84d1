package vm

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/supervise"
)

// tierOptions are a stack's options for driver (none or lima), the latter
// over the recorded limactl (testdata/fake-limactl): no VM boots here; the
// real one is `make e2e-vm`.
func tierOptions(t *testing.T, driver, initBinary string) Options {
	t.Helper()
	dir := t.TempDir()
	l, err := config.Parse("thesystem.yaml", []byte("vm:\n  driver: "+driver+"\nproxy:\n  port: 1\n"), dir,
		config.Options{LookupEnv: func(string) (string, bool) { return "", false }, GOOS: "linux", Home: dir})
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	fake, err := filepath.Abs("testdata/fake-limactl")
	if err != nil {
		t.Fatal(err)
	}
	return Options{Config: l.Config, Paths: config.Paths{StateDir: state, RuntimeDir: filepath.Join(state, "run")},
		Stack: "test", Component: "vm", InitBinary: initBinary, Logs: supervise.NewLogs(100), Limactl: fake}
}

// TestLayouts: each driver says where everything is, and the engine asks
// nothing else of it.
func TestLayouts(t *testing.T) {
	t.Run("lima", func(t *testing.T) {
		opt := tierOptions(t, "lima", "/bin/echo")
		d, err := New(opt)
		if err != nil {
			t.Fatal(err)
		}
		l := d.Layout()
		if d.Name() != "lima" || l.ProxyDir != GuestSocketDir || l.ServiceDir != GuestServiceDir || l.DashboardDir != GuestDashboardDir ||
			l.ProjectDir != GuestProjectShare || !l.ProjectShared || l.InitBinary != GuestInitBinary || l.AgentsDir != GuestAgentsDir || l.Files == nil {
			t.Fatalf("guest paths: %+v", l)
		}
		if !strings.HasPrefix(l.PodmanSocket, opt.Paths.LimaHome()) || !strings.HasPrefix(l.ChatSocket, opt.Paths.VMForwardDir()) ||
			!strings.HasPrefix(l.DashboardSocket, opt.Paths.VMForwardDir()) {
			t.Errorf("host sockets: %+v", l)
		}
		if l.OwnerUID != -1 || l.IDs.Base != 0 || l.ProbeTimeout != vmProbeTimeout || l.StartTimeout != vmStartTimeout {
			t.Errorf("owner, ids, timeouts: %+v", l)
		}
		// The template gets the proxy socket forwarded in, no mount (the
		// project comes over the engine's own link; the tokens and the
		// init binary over SSH), and no key from this environment.
		t.Setenv("ANTHROPIC_API_KEY", "sk-ant-api03-PLANTEDtierKEY0123456789abcdef")
		y, err := d.(*Lima).Template()
		if err != nil {
			t.Fatal(err)
		}
		b, err := Render(y)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, want := range []string{opt.Paths.ProxySocket(), "reverse: true", "propagateProxyEnv: false"} {
			if !strings.Contains(text, want) {
				t.Errorf("template lacks %q", want)
			}
		}
		for _, dir := range []string{opt.Paths.GuestBinDir(), opt.Paths.AgentsDir(), opt.Config.VM.Mount, "mountPoint"} {
			if strings.Contains(text, dir) {
				t.Errorf("%s is mounted into the VM", dir)
			}
		}
		if strings.Contains(text, "PLANTED") {
			t.Fatal("a key reached the template")
		}
	})
	for _, root := range []bool{false, true} {
		t.Run("none, root "+strconv.FormatBool(root), func(t *testing.T) {
			opt := tierOptions(t, "none", "/bin/echo")
			opt.Root = root
			d, err := New(opt)
			if err != nil {
				t.Fatal(err)
			}
			l := d.Layout()
			p := opt.Paths
			if d.Name() != "none" || l.PodmanSocket != p.PodmanSocket() || l.ProxyDir != p.SocketDir() || l.ServiceDir != p.ServiceDir() ||
				l.AgentsDir != p.AgentsDir() || l.InitBinary != "/bin/echo" || l.ChatSocket != p.ChatSocket() || l.ProbeTimeout != localProbeTimeout {
				t.Fatalf("host paths: %+v", l)
			}
			if st, err := d.Status(t.Context()); err != nil || st.State != StateRunning {
				t.Errorf("status %+v %v", st, err)
			}
			if !root {
				// Rootless podman: the agents' uid is the user's own
				// (keep-id), nothing chowned.
				if l.IDs.Base != 0 || l.IDs.Keep != agentUID || !l.IDs.Rootless() || l.OwnerUID != -1 || l.OwnerGID != -1 {
					t.Errorf("without root: %+v", l)
				}
				return
			}
			// Rootful podman: the agents' uid is the host's base+1000,
			// which no account has.
			if l.IDs.Base < 0x70000000 || l.OwnerUID != l.IDs.Host(agentUID) || l.OwnerGID != l.IDs.Host(agentGID) {
				t.Errorf("with root: %+v", l)
			}
			if _, err := user.LookupId(strconv.Itoa(l.OwnerUID)); err == nil {
				t.Errorf("uid %d is an account's", l.OwnerUID)
			}
		})
	}
}

func TestGuestInit(t *testing.T) {
	script := filepath.Join(t.TempDir(), "thesystem")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, bin, want string
	}{
		{"elf", "/bin/echo", ""},
		{"not linux", script, "is not a linux binary"},
		{"missing", "/nonexistent/thesystem-linux-arm64", "the linux build of thesystem for the VM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimaTier(tierOptions(t, "lima", tc.bin))
			got, err := l.guestInit()
			if tc.want == "" {
				if err != nil || got != tc.bin {
					t.Fatalf("guestInit = %q, %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// sshLink plays Lima's SSH master and its forwards for Heal: a host→guest
// forward is a listening socket on the host, a guest→host one a socket
// the guest has; the master may be gone (the host slept).
type sshLink struct {
	mu        sync.Mutex
	master    bool
	listeners map[string]net.Listener // host path → the forward's listener
	guest     map[string]bool         // guest sockets
	calls     []string
}

func (s *sshLink) RunInput(ctx context.Context, _ io.Reader, args ...string) ([]byte, error) {
	return s.Run(ctx, args...)
}

func (s *sshLink) Run(_ context.Context, args ...string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	args = args[2:] // -F ssh.config
	s.calls = append(s.calls, strings.Join(args, " "))
	switch {
	case args[0] == "-O" && args[1] == "check":
		if !s.master {
			return []byte("Control socket connect: No such file or directory"), errors.New("exit status 255")
		}
	case args[0] == "-f" && args[1] == "-N":
		s.master = true
	case args[0] == "-O" && (args[1] == "forward" || args[1] == "cancel"):
		if !s.master {
			return nil, errors.New("exit status 255")
		}
		from, to, _ := strings.Cut(args[3], ":")
		if args[2] == "-R" { // guest:host
			s.guest[from] = args[1] == "forward"
			return nil, nil
		}
		if ln := s.listeners[from]; ln != nil {
			_ = ln.Close()
			delete(s.listeners, from)
		}
		if args[1] == "forward" {
			var lc net.ListenConfig
			ln, err := lc.Listen(context.Background(), "unix", from)
			if err != nil {
				return nil, err
			}
			s.listeners[from] = ln
		}
		_ = to
	case len(args) >= 3 && args[1] == "test" && args[2] == "-S":
		if !s.guest[args[3]] {
			return nil, errors.New("exit status 1")
		}
	}
	return nil, nil
}

// TestHealEvery: the heal loop repairs forwards that died (the master gone
// with them: a new one first), says what it repaired, and then leaves
// working forwards alone.
func TestHealEvery(t *testing.T) {
	opt := tierOptions(t, "lima", "/bin/echo")
	l := newLimaTier(opt)
	dir := t.TempDir()
	link := &sshLink{listeners: map[string]net.Listener{}, guest: map[string]bool{}}
	defer func() {
		for _, ln := range link.listeners {
			_ = ln.Close()
		}
	}()
	l.SSH = link
	l.Forwards = []Forward{
		{Guest: "/run/podman/podman.sock", Host: filepath.Join(dir, "podman.sock")},
		{Guest: GuestSocketDir + "/agentauth.sock", Host: filepath.Join(dir, "agentauth.sock"), Reverse: true},
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.healEvery(ctx, 20*time.Millisecond) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(linesText(opt.Logs), "repaired 2 forwards") {
		if time.Now().After(deadline) {
			t.Fatalf("not repaired; log:\n%s\nssh: %q", linesText(opt.Logs), link.calls)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a few more checks: nothing to do
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("healEvery: %v", err)
	}
	link.mu.Lock()
	calls := strings.Join(link.calls, "\n")
	link.mu.Unlock()
	if strings.Count(calls, "-f -N") != 1 || strings.Count(linesText(opt.Logs), "repaired") != 1 {
		t.Errorf("one new master and one repair, then quiet; ssh:\n%s\nlog:\n%s", calls, linesText(opt.Logs))
	}
	if c, err := (&net.Dialer{}).DialContext(t.Context(), "unix", l.Forwards[0].Host); err != nil {
		t.Errorf("the host end of the podman forward: %v", err)
	} else {
		_ = c.Close()
	}
}

func linesText(logs *supervise.Logs) string {
	var b strings.Builder
	for _, l := range logs.Tail("", 1000) {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}
