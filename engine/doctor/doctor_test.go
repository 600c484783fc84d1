package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/secrets"
)

// mapStore is a key store for the checks to list; the real ones are
// tested in engine/secrets.
type mapStore map[string]string

func (m mapStore) Get(_ context.Context, p string) (secrets.Key, error) {
	if k, ok := m[p]; ok {
		return secrets.NewKey(k), nil
	}
	return secrets.Key{}, secrets.ErrNotFound
}
func (m mapStore) Set(context.Context, string, secrets.Key) error { return nil }
func (m mapStore) Delete(context.Context, string) error           { return nil }
func (m mapStore) List(context.Context) ([]string, error) {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out, nil
}

func byID(cs []api.Check) map[string]api.Check {
	out := map[string]api.Check{}
	for _, c := range cs {
		out[c.ID] = c
	}
	return out
}

func TestChecks(t *testing.T) {
	var lc net.ListenConfig
	busy, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	free, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freePort := free.Addr().(*net.TCPAddr).Port
	_ = free.Close() // free, not the default 9999 another stack on this machine may hold
	l, err := config.Parse("thesystem.yaml", []byte(fmt.Sprintf("proxy:\n  port: %d\nserver:\n  port: %d\n", freePort, busyPort)), t.TempDir(),
		config.Options{LookupEnv: func(string) (string, bool) { return "", false }, GOOS: "linux", Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	noTools := func(string) (string, error) { return "", exec.ErrNotFound }
	echoTool := func(string) (string, error) { return "/bin/echo", nil }

	for _, tc := range []struct {
		name string
		in   Inputs
		want map[string]string // id → status (+ substring of detail or fix after "|")
	}{
		{"bare machine", Inputs{Config: l, StoreErr: errors.New("no D-Bus"), LookPath: noTools, MissingRuntimes: []string{"@openai/codex@0.171.0-linux-x64"}},
			map[string]string{
				"config": "ok", "compat": "ok",
				"tool.podman":  "fail|apt-get install podman", // needed by vm.driver none
				"tool.limactl": "ok|not needed with vm.driver none",
				"vm":           "warn|without the VM firebreak",
				"provisioning": "warn|@openai/codex@0.171.0-linux-x64",
				"keys":         "fail|no D-Bus",
				"port.chat":    "fail|change server.port",
				"port.proxy":   "ok",
			}},
		{"ready machine", Inputs{Config: l, Store: mapStore{"anthropic": "x"}, LookPath: echoTool,
			Ours: map[int]bool{busyPort: true}},
			map[string]string{
				"tool.podman": "ok|echo", "provisioning": "ok|downloaded", "keys": "ok|anthropic",
				"port.chat": "ok|held by this engine",
			}},
		{"no keys", Inputs{Config: l, Store: mapStore{}, LookPath: echoTool},
			map[string]string{"keys": "warn|thesystem keys set anthropic"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := byID(Run(t.Context(), tc.in))
			for id, want := range tc.want {
				status, text, _ := strings.Cut(want, "|")
				c, ok := got[id]
				if !ok {
					t.Errorf("no check %s", id)
					continue
				}
				if c.Status != status || !strings.Contains(c.Detail+" "+c.Fix, text) {
					t.Errorf("%s = %+v, want %s containing %q", id, c, status, text)
				}
			}
		})
	}
}

// TestLimaChecks: with vm.driver lima on Linux, QEMU is needed and the
// VM's state shows; a broken VM fails with the way out.
func TestLimaChecks(t *testing.T) {
	l, err := config.Parse("thesystem.yaml", []byte("vm:\n  driver: lima\n"), t.TempDir(),
		config.Options{LookupEnv: func(string) (string, bool) { return "", false }, GOOS: "linux", Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	noQEMU := func(name string) (string, error) {
		if strings.HasPrefix(name, "qemu-system-") {
			return "", exec.ErrNotFound
		}
		return "/bin/echo", nil
	}
	for _, tc := range []struct {
		name      string
		in        Inputs
		id, state string
		detail    string
	}{
		{"no qemu", Inputs{Config: l, LookPath: noQEMU, GOOS: "linux"}, "tool.qemu", api.CheckFail, "not found on PATH"},
		{"macOS needs no qemu", Inputs{Config: l, LookPath: noQEMU, GOOS: "darwin"}, "tool.qemu", "", ""},
		{"running", Inputs{Config: l, LookPath: noQEMU, VM: "running"}, "vm", api.CheckOK, "vm.driver lima: the VM is running"},
		{"broken", Inputs{Config: l, LookPath: noQEMU, VM: "broken DEGRADED"}, "vm", api.CheckFail, "the VM is broken DEGRADED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := byID(Run(t.Context(), tc.in))[tc.id]
			if tc.state == "" {
				if ok {
					t.Errorf("unexpected check %+v", c)
				}
				return
			}
			if c.Status != tc.state || !strings.Contains(c.Detail, tc.detail) {
				t.Errorf("%+v", c)
			}
		})
	}
}

func TestChatAllowlistCheck(t *testing.T) {
	for _, tc := range []struct {
		yaml, status, detail string
	}{
		{"", api.CheckOK, "admits only the identities TheSystem issued"},
		{"server:\n  allowlist: false\n", api.CheckWarn, "any local process or agent can join the chat under any name"},
		{"server:\n  chat: upstream\n", api.CheckWarn, "admits any name"},
	} {
		t.Run(tc.status+tc.detail, func(t *testing.T) {
			l, err := config.Parse("thesystem.yaml", []byte(tc.yaml), t.TempDir(),
				config.Options{LookupEnv: func(string) (string, bool) { return "", false }, GOOS: "linux", Home: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			c := byID(Run(t.Context(), Inputs{Config: l, Store: mapStore{}, LookPath: func(string) (string, error) { return "/bin/echo", nil }}))["chat.allowlist"]
			if c.Status != tc.status || !strings.Contains(c.Detail, tc.detail) {
				t.Errorf("%+v", c)
			}
		})
	}
}

// TestRootlessChecks: a plain user's podman (vm.driver none, not root)
// needs newuidmap/newgidmap and a range of 65536 subordinate ids; each
// missing piece fails with the command that fixes it, and root is not
// asked for either.
func TestRootlessChecks(t *testing.T) {
	l, err := config.Parse("thesystem.yaml", nil, t.TempDir(),
		config.Options{LookupEnv: func(string) (string, bool) { return "", false }, GOOS: "linux", Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	full := file("full", "alice:100000:65536\n# a comment\nbob:165536:65536\n")
	small := file("small", "alice:100000:1000\n")
	byUID := file("byuid", "1001:200000:65536\n")
	bad := file("bad", "alice:100000\n")
	tools := func(string) (string, error) { return "/bin/echo", nil }
	noMap := func(name string) (string, error) {
		if strings.HasPrefix(name, "new") {
			return "", exec.ErrNotFound
		}
		return "/bin/echo", nil
	}
	// cgroups: v1 (no cgroup.controllers at the root), v2 with and
	// without the controllers delegated to alice's user service.
	v1, v2, v2bare := filepath.Join(dir, "v1"), filepath.Join(dir, "v2"), filepath.Join(dir, "v2bare")
	svc := filepath.Join("user.slice", "user-1001.slice", "user@1001.service")
	for _, d := range []string{v1, filepath.Join(v2, svc), filepath.Join(v2bare, svc)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file(filepath.Join("v2", "cgroup.controllers"), "cpuset cpu io memory pids\n")
	file(filepath.Join("v2", svc, "cgroup.controllers"), "cpu memory pids\n")
	file(filepath.Join("v2bare", "cgroup.controllers"), "cpuset cpu io memory pids\n")
	file(filepath.Join("v2bare", svc, "cgroup.controllers"), "memory pids\n")
	_ = os.Mkdir(filepath.Join(dir, "v2nouser"), 0o755)
	file(filepath.Join("v2nouser", "cgroup.controllers"), "cpuset cpu io memory pids\n")
	alice := func(uid, gid string) *Account {
		return &Account{Name: "alice", UID: 1001, SubUID: uid, SubGID: gid, Cgroups: v2}
	}
	withCgroups := func(a *Account, root string) *Account { a.Cgroups = root; return a }
	for _, tc := range []struct {
		name string
		in   Inputs
		want map[string]string // id → status|text; "" → no such check
	}{
		{"ready", Inputs{Account: alice(full, full), LookPath: tools},
			map[string]string{"rootless.idmap": "ok|newuidmap and newgidmap found", "rootless.subids": "ok|alice has 65536 uids and 65536 gids"}},
		{"by uid", Inputs{Account: alice(byUID, byUID), LookPath: tools},
			map[string]string{"rootless.subids": "ok|65536 uids"}},
		{"no uidmap", Inputs{Account: alice(full, full), LookPath: noMap},
			map[string]string{"rootless.idmap": "fail|apt-get install uidmap"}},
		{"no range", Inputs{Account: alice(filepath.Join(dir, "missing"), full), LookPath: tools},
			map[string]string{"rootless.subids": "fail|sudo usermod --add-subuids 231072-296607 --add-subgids 231072-296607 alice, then podman system migrate"}},
		{"range too small", Inputs{Account: alice(small, small), LookPath: tools},
			map[string]string{"rootless.subids": "fail|no range of 65536 subordinate ids in " + small + " and " + small}},
		{"malformed", Inputs{Account: alice(bad, full), LookPath: tools},
			map[string]string{"rootless.subids": "fail|" + bad + ":1: want name:first:count"}},
		{"limits apply", Inputs{Account: alice(full, full), LookPath: tools},
			map[string]string{"rootless.limits": "ok|the containers' limits apply"}},
		{"cgroups v1", Inputs{Account: withCgroups(alice(full, full), v1), LookPath: tools},
			map[string]string{"rootless.limits": "warn|cgroups v1: rootless podman runs the containers without their memory, CPU and pids limits"}},
		{"cpu not delegated", Inputs{Account: withCgroups(alice(full, full), v2bare), LookPath: tools},
			map[string]string{"rootless.limits": "warn|systemd does not delegate cpu to alice"}},
		{"no user session", Inputs{Account: withCgroups(alice(full, full), filepath.Join(dir, "v2nouser")), LookPath: tools},
			map[string]string{"rootless.limits": "warn|no systemd user session"}},
		{"root", Inputs{Account: &Account{Name: "root"}, LookPath: noMap},
			map[string]string{"rootless.idmap": "", "rootless.subids": "", "rootless.limits": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Config, tc.in.GOOS = l, "linux"
			got := byID(Run(t.Context(), tc.in))
			for id, want := range tc.want {
				c, ok := got[id]
				if want == "" {
					if ok {
						t.Errorf("unexpected %+v", c)
					}
					continue
				}
				status, text, _ := strings.Cut(want, "|")
				if !ok || c.Status != status || !strings.Contains(c.Detail+" "+c.Fix, text) {
					t.Errorf("%s = %+v, want %s containing %q", id, c, status, text)
				}
			}
		})
	}
}
