package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
)

// rootlessUserName is the plain account TestRootless runs the stack as.
const rootlessUserName = "thesystem-rootless"

// plainUser is an unprivileged account with a home, a runtime dir and a
// D-Bus session of its own (a Secret Service unlocked in it), as a new
// desktop user has; the test runs commands as it.
type plainUser struct {
	uid, gid int
	dir      string // the test's files, every one the user's
	env      []string
}

// newPlainUser makes (once) the account with subordinate ids and gives it
// a fresh home under a dir of the test's. Root only.
func newPlainUser(t *testing.T) *plainUser {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to make an unprivileged account")
	}
	for _, tool := range []string{"podman", "newuidmap", "newgidmap", "dbus-daemon", "gnome-keyring-daemon", "useradd"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("THESYSTEM_TEST_PODMAN") == "1" {
				t.Fatalf("%s is missing (make deps installs it): %v", tool, err)
			}
			t.Skip(err)
		}
	}
	if _, err := user.Lookup(rootlessUserName); err != nil {
		if out, err := exec.CommandContext(t.Context(), "useradd", "--create-home", "--shell", "/bin/sh", rootlessUserName).CombinedOutput(); err != nil {
			t.Fatalf("useradd: %v\n%s", err, out)
		}
	}
	u, err := user.Lookup(rootlessUserName)
	if err != nil {
		t.Fatal(err)
	}
	p := &plainUser{}
	p.uid, _ = strconv.Atoi(u.Uid)
	p.gid, _ = strconv.Atoi(u.Gid)
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		b, _ := os.ReadFile(f)
		if !strings.Contains("\n"+string(b), "\n"+rootlessUserName+":") {
			// useradd gives a range where login.defs says so; else one
			// below where the rootful containers' ids start (0x70000000).
			out, err := exec.CommandContext(t.Context(), "usermod", "--add-subuids", "1610612736-1610678271", "--add-subgids", "1610612736-1610678271", rootlessUserName).CombinedOutput()
			if err != nil {
				t.Fatalf("usermod: %v\n%s", err, out)
			}
			break
		}
	}
	dir, err := os.MkdirTemp("", "thesystem-rootless")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() {
		// Whatever the account still runs (podman's pause process holds
		// its user namespace) goes, then its files (root removes them,
		// those its containers' ids own too).
		_ = exec.CommandContext(context.Background(), "pkill", "-KILL", "-u", rootlessUserName).Run()
		time.Sleep(200 * time.Millisecond)
		_ = os.RemoveAll(dir)
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"home", "run", "project"} {
		p.mkdir(t, filepath.Join(dir, d), 0o700)
	}
	p.mkdir(t, filepath.Join(dir, "bin"), 0o755)
	p.env = []string{"HOME=" + filepath.Join(dir, "home"), "USER=" + rootlessUserName, "LOGNAME=" + rootlessUserName,
		"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "XDG_RUNTIME_DIR=" + filepath.Join(dir, "run")}

	// Its own session bus and an unlocked Secret Service on it.
	addr := startBus(t, p.command(context.Background(), "dbus-daemon", "--session", "--nofork", "--print-address=1"))
	p.env = append(p.env, "DBUS_SESSION_BUS_ADDRESS="+addr)
	kr := p.command(t.Context(), "gnome-keyring-daemon", "--unlock", "--components=secrets")
	kr.Stdin = strings.NewReader("thesystem-test")
	if out, err := kr.CombinedOutput(); err != nil {
		t.Fatalf("gnome-keyring-daemon: %v\n%s", err, out)
	}
	return p
}

// mkdir makes a dir of the user's.
func (p *plainUser) mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, p.uid, p.gid); err != nil {
		t.Fatal(err)
	}
}

// install copies an executable where the user can run it.
func (p *plainUser) install(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(p.dir, "bin", filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// command is argv run as the user, in its project dir, with its
// environment only.
func (p *plainUser) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = filepath.Join(p.dir, "project")
	cmd.Env = p.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(p.uid), Gid: uint32(p.gid), Groups: []uint32{}}}
	return cmd
}

// run runs a command as the user: its exit code and output.
func (p *plainUser) run(t *testing.T, stdin string, name string, args ...string) result {
	t.Helper()
	return p.runEnv(t, p.env, stdin, name, args...)
}

// runEnv is run with env instead of the user's environment.
func (p *plainUser) runEnv(t *testing.T, env []string, stdin string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := p.command(ctx, name, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return result{code, out.String(), errb.String()}
}

// TestRootless: a plain user (no root, its own D-Bus session and key
// store, rootless podman) starts the whole stack with a stand-in runtime
// and a stored key, and the container tier keeps the root test's
// invariants: no network, every capability dropped, the agents' uid 1000
// (the user's own, mapped by podman), a read-only root; each agent's
// token readable only by the user, only its own container mounting it;
// the planted key nowhere in the containers; then a clean stop.
func TestRootless(t *testing.T) {
	u := newPlainUser(t)
	const planted = "sk-ant-api03-PLANTEDrootless0123456789abcdefgh"
	up := &upstreamRecorder{}
	fake := httptest.NewServer(up)
	defer fake.Close()
	bin := u.install(t, binary)
	check := u.install(t, buildVMCheck(t))
	u.env = append(u.env, "THESYSTEM_CLAUDE_BIN="+check)
	u.env = append(u.env, foreignPodmanEnv()...)
	conf := filepath.Join(u.dir, "bin", "containers.conf")
	write(t, conf, testContainersConf)
	u.env = append(u.env, "THESYSTEM_CONTAINERS_CONF="+conf)
	proxyPort, chatPort, dashPort := freePort(t), freePort(t), freePort(t)
	project := filepath.Join(u.dir, "project")
	write(t, filepath.Join(project, "thesystem.yaml"), fmt.Sprintf(
		"proxy:\n  port: %d\n  upstreams:\n    anthropic: %s\nserver:\n  port: %d\n  dashboard: %d\nswarm:\n  agents: 2\nchannels: ['#general']\n",
		proxyPort, fake.URL, chatPort, dashPort))
	_ = os.Chown(filepath.Join(project, "thesystem.yaml"), u.uid, u.gid)

	if r := u.run(t, "", bin, "doctor"); !hasLine(r.stdout, "rootless.subids", "ok") || !hasLine(r.stdout, "rootless.idmap", "ok") ||
		!hasLine(r.stdout, "tool.podman", "ok", "podman version") {
		t.Errorf("doctor as a plain user: %+v", r)
	} else {
		t.Logf("$ thesystem doctor (as %s)\n%s", rootlessUserName, r.stdout)
	}
	if r := u.run(t, planted, bin, "keys", "set", "anthropic"); r.code != 0 {
		t.Fatalf("keys set: %+v", r)
	}
	r := u.run(t, "", bin, "start")
	if r.code != 0 && (strings.Contains(r.stderr, "keep-id requires additional UIDs") || strings.Contains(r.stderr, "can't get final child's PID")) {
		// Seen once in CI (of many runs): two agents' creates failing
		// together in a rootless podman whose first containers had just
		// started. Recorded, and the start tried again (the failed start
		// rolled itself back); what follows holds the second start to
		// every invariant.
		t.Logf("the first start failed (rootless podman, transient):\n%s", r.stderr)
		u.run(t, "", bin, "stop")
		r = u.run(t, "", bin, "start")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = u.command(ctx, bin, "stop").Run()
	})
	if r.code != 0 {
		t.Fatalf("start as %s: %+v", rootlessUserName, r)
	}
	t.Logf("$ thesystem start (as %s)\n%s", rootlessUserName, r.stdout)

	// agent-1 answers through the proxy and from inside its container.
	target := fake.Listener.Addr().String() // the host's loopback: never reached
	if r := u.run(t, "", bin, "chat", "send", "#general", "@agent-1 check "+target); r.code != 0 {
		t.Fatalf("chat send: %+v", r)
	}
	var res map[string]string
	for deadline := time.Now().Add(2 * time.Minute); res == nil; time.Sleep(500 * time.Millisecond) {
		r := u.run(t, "", bin, "chat", "tail", "#general", "--json", "-n", "20")
		for _, line := range strings.Split(r.stdout, "\n") {
			var m api.ChatMessage
			if json.Unmarshal([]byte(line), &m) != nil || m.From != "agent-1" || strings.HasPrefix(m.Content, "⋯ ") {
				continue
			}
			if err := json.Unmarshal([]byte(answerText(m.Content)), &res); err != nil {
				t.Fatalf("agent-1 answered %q", m.Content)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer from agent-1:\n%s", r.stdout)
		}
	}
	if !strings.HasPrefix(res["proxy"], "200 ") || up.last() != planted {
		t.Errorf("through the proxy: %q; the upstream got the stored key: %v", res["proxy"], up.last() == planted)
	}
	if !strings.HasPrefix(res["dial "+target], "error:") {
		t.Errorf("the container reached the host's %s: %q", target, res["dial "+target])
	}
	if res["Uid"] != "1000 1000 1000 1000" || res["CapEff"] != "0000000000000000" {
		t.Errorf("inside agent-1: uid %q, effective capabilities %q", res["Uid"], res["CapEff"])
	}

	// The containers, as the user's podman sees them (its own storage;
	// what the tests planted in the environment for podman removed).
	podman := func(args ...string) string {
		t.Helper()
		r := u.runEnv(t, sandbox.PodmanEnv(u.env, conf), "", "podman", args...)
		if r.code != 0 {
			t.Fatalf("podman %v: %+v", args, r)
		}
		return r.stdout
	}
	names := strings.Fields(podman("ps", "--format", "{{.Names}}", "--filter", "label="+sandbox.LabelManaged+"=true"))
	if len(names) != 4 {
		t.Fatalf("the user's containers: %v", names)
	}
	inspect := podman(append([]string{"inspect"}, names...)...)
	if strings.Contains(inspect, "PLANTED") {
		t.Error("podman inspect holds the key")
	}
	var cs []struct {
		Name       string
		Config     struct{ User string }
		HostConfig struct {
			NetworkMode    string
			ReadonlyRootfs bool
			CapDrop        []string
			CapAdd         []string
			UsernsMode     string
			SecurityOpt    []string
		}
		Mounts []struct{ Source, Destination string }
	}
	if err := json.Unmarshal([]byte(inspect), &cs); err != nil {
		t.Fatal(err)
	}
	tokenDirs := map[string]string{} // container → the token dir it mounts
	for _, c := range cs {
		hc := c.HostConfig
		if hc.NetworkMode != "none" || !hc.ReadonlyRootfs || !hasFold(hc.CapDrop, "CAP_CHOWN") || !hasFold(hc.CapDrop, "CAP_NET_RAW") || len(hc.CapAdd) != 0 ||
			c.Config.User != "1000:1000" || !hasFold(hc.SecurityOpt, "no-new-privileges") {
			t.Errorf("%s: network %q, read-only %v, caps dropped %v added %v, user %q, security %v", c.Name, hc.NetworkMode, hc.ReadonlyRootfs, hc.CapDrop, hc.CapAdd, c.Config.User, hc.SecurityOpt)
		}
		for _, m := range c.Mounts {
			if m.Destination == "/run/thesystem/agent" {
				tokenDirs[c.Name] = m.Source
			}
		}
	}
	// Each agent mounts its own token dir, no other; the token is the
	// user's alone on the host (no other account reads it).
	var a1, a2 string
	for n, d := range tokenDirs {
		switch {
		case strings.HasSuffix(n, "-agent-1"):
			a1 = d
		case strings.HasSuffix(n, "-agent-2"):
			a2 = d
		}
	}
	if a1 == "" || a2 == "" || a1 == a2 || strings.HasPrefix(a2, a1) || strings.HasPrefix(a1, a2) {
		t.Errorf("the agents' token dirs: %v", tokenDirs)
	}
	token := filepath.Join(a1, "token")
	fi, err := os.Stat(token)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != u.uid || fi.Mode().Perm() != 0o400 {
		t.Errorf("agent-1's token on the host: uid %d mode %v, want the user's (%d), 0400", st.Uid, fi.Mode().Perm(), u.uid)
	}
	other := exec.CommandContext(t.Context(), "cat", token)
	other.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	if out, err := other.CombinedOutput(); err == nil {
		t.Errorf("another account read agent-1's token: %q", out)
	}
	// The key is in no process of the user's (the containers' included)
	// nor in any file of its state, run or home dirs but the key store's.
	for _, pid := range userPIDs(t, u.uid) {
		for _, f := range []string{"environ", "cmdline"} {
			if b, _ := os.ReadFile(filepath.Join("/proc", pid, f)); bytes.Contains(b, []byte("PLANTED")) {
				t.Errorf("the key is in pid %s's %s", pid, f)
			}
		}
	}
	keyring := filepath.Join(u.dir, "home", ".local", "share", "keyrings")
	_ = filepath.WalkDir(u.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(path, keyring) || !d.Type().IsRegular() {
			return nil
		}
		if b, _ := os.ReadFile(path); bytes.Contains(b, []byte("PLANTED")) {
			t.Errorf("the key is in %s", path)
		}
		return nil
	})

	if r := u.run(t, "", bin, "stop"); r.code != 0 {
		t.Fatalf("stop: %+v", r)
	}
	if left := strings.Fields(podman("ps", "-a", "--format", "{{.Names}}", "--filter", "label="+sandbox.LabelManaged+"=true")); len(left) != 0 {
		t.Errorf("left after stop: %v", left)
	}
}

// userPIDs are the processes uid runs.
func userPIDs(t *testing.T, uid int) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if fi, err := os.Stat(filepath.Join("/proc", e.Name())); err == nil && int(fi.Sys().(*syscall.Stat_t).Uid) == uid {
			out = append(out, e.Name())
		}
	}
	return out
}

// hasFold: an element of list holds want, in any case.
func hasFold(list []string, want string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.Contains(strings.ToLower(s), strings.ToLower(want)) })
}
