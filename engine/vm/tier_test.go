package vm

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

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
			l.ProjectDir != GuestProjectDir || l.InitBinary != GuestInitBinary || l.AgentsDir != GuestShareDir+"/agents" {
			t.Fatalf("guest paths: %+v", l)
		}
		if !strings.HasPrefix(l.PodmanSocket, opt.Paths.LimaHome()) || !strings.HasPrefix(l.ChatSocket, opt.Paths.VMForwardDir()) ||
			!strings.HasPrefix(l.DashboardSocket, opt.Paths.VMForwardDir()) {
			t.Errorf("host sockets: %+v", l)
		}
		if l.OwnerUID != -1 || l.IDs.Base != 0 || l.ProbeTimeout != vmProbeTimeout || l.StartTimeout != vmStartTimeout {
			t.Errorf("owner, ids, timeouts: %+v", l)
		}
		// The template gets the proxy socket forwarded in, the token dir
		// mounted (the init binary is copied to the guest's disk: not
		// through sshfs), and no key from this environment.
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
		for _, want := range []string{opt.Paths.ProxySocket(), "reverse: true", opt.Paths.AgentsDir(), "mountPoint: /mnt/thesystem/agents", "propagateProxyEnv: false"} {
			if !strings.Contains(text, want) {
				t.Errorf("template lacks %q", want)
			}
		}
		if strings.Contains(text, opt.Paths.GuestBinDir()) {
			t.Error("the init binary's dir is mounted into the VM")
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
				if l.IDs.Base != 0 || l.OwnerUID != agentUID {
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
