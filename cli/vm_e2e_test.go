//go:build e2evm

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/component"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
	"github.com/thesystem-dev/thesystem/engine/vm"
)

// TestVMStack is the real-VM test (make e2e-vm, which prepares what it
// needs and runs it as an unprivileged user in a network namespace with
// only a loopback): `thesystem start` with vm.driver lima boots a Lima VM
// (QEMU, TCG) from the generated template with a local image, runs the
// chat server, the dashboard and an agent in the VM's podman; the agent's
// runtime (vmcheck) reaches the provider only through the host's proxy,
// over the socket forwarded into the VM, and no address of the host; no
// planted key reaches the VM; a dead SSH link (what a host sleep does) is
// repaired; stop, a warm start, destroy.
func TestVMStack(t *testing.T) {
	limactl, image, claudePkg := os.Getenv("THESYSTEM_LIMACTL"), os.Getenv("THESYSTEM_VM_IMAGE"), os.Getenv("THESYSTEM_E2E_CLAUDE_PKG")
	if limactl == "" || image == "" || claudePkg == "" {
		t.Fatal("run it with `make e2e-vm`: THESYSTEM_LIMACTL, THESYSTEM_VM_IMAGE and THESYSTEM_E2E_CLAUDE_PKG are not set")
	}
	// The npm registry, on the host's loopback: claude-code's real linux
	// package for the guest, which the engine downloads, checks and copies
	// into the VM.
	pkg, err := sandbox.ClaudeCodePackage(component.ClaudeCodeVersion, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	registry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != pkg.TarballURL("") {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, claudePkg)
	}))
	defer registry.Close()
	const planted = "sk-ant-api03-PLANTEDvmE2E0123456789abcdefgh"
	env := append(keyringEnv(t),
		"THESYSTEM_LIMACTL="+limactl, "THESYSTEM_VM_IMAGE="+image, "npm_config_registry="+registry.URL,
		// The host is a Mac, as far as the engine may tell: no step uses its
		// own Linux (ldd, libraries, mmdebstrap, a runtime binary of its own).
		"THESYSTEM_FOREIGN_HOST=1", "THESYSTEM_CLAUDE_BIN=", "THESYSTEM_DEBIAN_BASE=",
		"QEMU_SYSTEM_X86_64="+os.Getenv("QEMU_SYSTEM_X86_64"),
		// Secrets in the daemon's environment: none may reach the VM.
		"ANTHROPIC_API_KEY="+planted, "THESYSTEM_NOTE="+planted)
	state := envValue(env, "THESYSTEM_STATE_DIR")
	limaHome := filepath.Join(state, "lima")
	if free, err := vm.FreeBytes(state); err == nil {
		t.Logf("%s free on the disk that holds the VM", vm.HumanBytes(free))
	}

	up := &toolUpstream{}
	fake := httptest.NewServer(up)
	defer fake.Close()
	// A listener of the host's: the agent must not reach it, by any address.
	var lc net.ListenConfig
	hostLn, err := lc.Listen(t.Context(), "tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()
	hostPort := hostLn.Addr().(*net.TCPAddr).Port

	dir := t.TempDir()
	chatPort := freePort(t)
	write(t, filepath.Join(dir, "README"), "the project, read-only in the VM\n")
	// The project is a git repository: the agent works on its own branch of
	// it, and its work comes back as a branch.
	git := func(args ...string) string { t.Helper(); return gitIn(t, dir, args...) }
	git("init", "-q", "-b", "main")
	git("add", "README")
	git("commit", "-qm", "the project")
	write(t, filepath.Join(dir, "thesystem.yaml"), fmt.Sprintf(`vm:
  driver: lima
  cpus: 2
  memory: 2GiB
  disk: 8GiB
proxy:
  port: %d
  upstreams:
    anthropic: %s
server:
  port: %d
  dashboard: %d
swarm:
  agents: 1
channels: ['#general']
`, freePort(t), fake.URL, chatPort, freePort(t)))
	if r := runIn(t, dir, env, planted, "keys", "set", "anthropic"); r.code != 0 {
		t.Fatalf("keys set: %+v", r)
	}
	t.Cleanup(func() {
		// Whatever a failed run left: the daemon, then the VM.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		_ = newCmd(ctx, dir, env, "stop").Run()
		for _, inst := range instances(t, limactl, limaHome) {
			cmd := exec.CommandContext(ctx, limactl, "delete", "-f", inst)
			cmd.Env = append(os.Environ(), "LIMA_HOME="+limaHome)
			_ = cmd.Run()
		}
	})

	diag := func() string { return diagnose(t, limactl, limaHome) }
	start := func(what string) {
		t.Helper()
		t0 := time.Now()
		r := runIn(t, dir, env, "", "start")
		took := time.Since(t0)
		if r.code != 0 {
			// The reason last: CI shows the end of what a failure printed.
			logs := runIn(t, dir, env, "", "logs", "-n", "300")
			t.Logf("logs:\n%s", logs.stdout)
			t.Fatalf("%s start failed after %s (exit %d):\n%s\n%s", what, took.Round(100*time.Millisecond), r.code, r.stderr, diag())
		}
		t.Logf("%s start: %s\n%s", what, took.Round(100*time.Millisecond), r.stderr)
		waitHealthy(t, dir, env, what, 3*time.Minute, diag)
	}
	start("cold")
	// Where the agents' image's time went (copying the runtime in, the
	// build in the guest).
	if r := runIn(t, dir, env, "", "logs", "swarm", "-n", "40"); r.code == 0 {
		t.Logf("the swarm's log:\n%s", r.stdout)
	}
	insts := instances(t, limactl, limaHome)
	if len(insts) != 1 {
		t.Fatalf("instances: %v", insts)
	}
	inst := insts[0]

	// The agent's runtime, in its container in the VM, calls the provider
	// through the proxy and dials the host every way it could.
	targets := []string{fmt.Sprintf("127.0.0.1:%d", hostPort), fmt.Sprintf("10.0.2.2:%d", hostPort),
		fmt.Sprintf("192.168.5.2:%d", hostPort), "10.0.2.3:53"}
	// The task: claude-code's Bash tool, in its container in the VM, dials
	// the host every way it could, says who it runs as, and commits a file
	// on the agent's branch.
	var probe strings.Builder
	probe.WriteString("for t in " + strings.Join(targets, " ") + `; do if timeout 5 bash -c "echo > /dev/tcp/${t%:*}/${t#*:}" 2>/dev/null; ` +
		`then echo "REACHED $t"; else echo "refused $t"; fi; done; grep -E '^(Uid|CapEff):' /proc/self/status | tr -s '\t' ' '; ` +
		`date +%s%N >> proof.txt && git add proof.txt && git commit -qm proof && git log -1 --format='COMMITTED %s on %D'`)
	up.command = probe.String()
	check := func(when string) {
		t.Helper()
		t0 := time.Now()
		answer := answerText(askAgent(t, env, "agent-1", "prove it ("+when+")", 10*time.Minute))
		t.Logf("%s: claude-code in the VM answered in %s: %q", when, time.Since(t0).Round(100*time.Millisecond), answer)
		if !strings.Contains(answer, "COMMITTED proof on HEAD -> thesystem/agent-1") {
			t.Errorf("%s: no commit on the agent's branch in the answer: %q", when, answer)
		}
		if got := up.lastKey(); got != planted {
			t.Errorf("%s: through the proxy, the upstream got key %q", when, got)
		}
		for _, target := range targets {
			if strings.Contains(answer, "REACHED "+target) || !strings.Contains(answer, "refused "+target) {
				t.Errorf("%s: the agent reached %s (or did not try): %q", when, target, answer)
			}
		}
		if !strings.Contains(answer, "Uid: 1000 1000 1000 1000") || !strings.Contains(answer, "CapEff: 0000000000000000") {
			t.Errorf("%s: uid or caps: %q", when, answer)
		}
	}
	check("cold")

	// The agent's work comes back out of the VM (its workspace volume read
	// through podman): diff shows it, export makes it a branch of the
	// project, and the user's HEAD, branch and files stay as they were.
	head, status := git("rev-parse", "HEAD"), git("status", "--porcelain")
	if r := runIn(t, dir, env, "", "agents", "diff", "agent-1", "--stat"); r.code != 0 || !strings.Contains(r.stdout, "proof.txt") {
		t.Errorf("agents diff: %+v", r)
	}
	if r := runIn(t, dir, env, "", "agents", "export", "agent-1"); r.code != 0 {
		t.Errorf("agents export: %+v", r)
	} else {
		t.Logf("agents export: %s", strings.TrimSpace(r.stdout))
	}
	if got := git("log", "-1", "--format=%s", "thesystem/agent-1"); got != "proof" {
		t.Errorf("the exported branch's last commit: %q", got)
	}
	if git("rev-parse", "HEAD") != head || git("rev-parse", "--abbrev-ref", "HEAD") != "main" || git("status", "--porcelain") != status {
		t.Error("export changed the user's HEAD, branch or files")
	}

	// No key in the VM: not in the template, Lima's instance files, the
	// guest's environments, files or containers.
	noKeyInTree(t, limaHome, planted)
	shell := func(script string) string {
		t.Helper()
		out, err := limactlRun(t, limactl, limaHome, "shell", "--workdir", "/", inst, "sudo", "sh", "-c", script)
		if err != nil {
			t.Fatalf("in the VM: %s: %v\n%s", script, err, out)
		}
		return string(out)
	}
	// Neither the pattern nor the marker match themselves: this very
	// command shows in sudo's SUDO_COMMAND and in the logs.
	guest := shell(`cat /proc/[0-9]*/environ 2>/dev/null | tr '\0' '\n'; ` +
		`grep -rl 'PLANTE[D]vmE2E' /etc /home /root /run /tmp /var/lib/cloud /var/log /var/lib/containers 2>/dev/null | sed 's/^/LE''AK: /'; ` +
		`podman inspect $(podman ps -aq); cat ` + vm.GuestProjectDir + `/README`)
	if strings.Contains(guest, planted) || strings.Contains(guest, "LEAK: ") {
		for _, l := range strings.Split(guest, "\n") {
			if strings.Contains(l, planted) || strings.HasPrefix(l, "LEAK: ") {
				t.Log(l)
			}
		}
		t.Fatal("a planted key reached the VM")
	}
	if !strings.Contains(guest, "the project, read-only in the VM") || !strings.Contains(guest, `"NetworkMode": "none"`) {
		t.Errorf("in the VM:\n%s", guest)
	}
	if out := shell("touch " + vm.GuestProjectDir + "/x 2>&1 || echo refused"); !strings.Contains(out, "refused") {
		t.Errorf("the project is writable in the VM: %s", out)
	}

	restarts := func() map[string]int {
		t.Helper()
		var st api.Status
		r := runIn(t, dir, env, "", "status", "--json")
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("status: %+v", r)
		}
		out := map[string]int{}
		for _, c := range st.Components {
			out[c.Name] = c.Restarts
		}
		return out
	}
	before := restarts()

	// The host sleeps: the SSH link that carried the forwards dies. The
	// engine notices on the sockets and sets them up again.
	repairs := func() int {
		r := runIn(t, dir, env, "", "logs", "vm", "-n", "2000")
		return strings.Count(r.stdout, "repaired ")
	}
	repairedBefore := repairs() // Lima may have set one up before the guest's dir existed
	sshConfig := filepath.Join(limaHome, inst, "ssh.config")
	if out, err := exec.CommandContext(t.Context(), "ssh", "-F", sshConfig, "-O", "exit", "lima-"+inst).CombinedOutput(); err != nil {
		t.Fatalf("ssh -O exit: %v %s", err, out)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		if r := runIn(t, dir, env, "", "logs", "vm", "-n", "2000"); strings.Count(r.stdout, "repaired ") > repairedBefore {
			t.Logf("repaired: %s", lastLineWith(r.stdout, "repaired"))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the forwards were not repaired")
		}
	}
	waitHealthy(t, dir, env, "after the repair", 3*time.Minute, diag)
	if after := restarts(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("components restarted over the repair: %v, before %v", after, before)
	}
	check("after the repair")

	// The project's own link (an SSH connection of the engine's, sshfs at
	// its guest end) dies too: the engine makes it again, the guest and
	// the agent's running container see the project again (the share's
	// slave propagation), and a new container of the agent starts (its
	// token goes over SSH, not through a mount) and works.
	killed := killProjectLink(t)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		if r := runIn(t, dir, env, "", "logs", "vm", "-n", "2000"); strings.Contains(r.stdout, "mounted the project in the VM again") {
			t.Logf("killed the project's link (pid %d): %s", killed, lastLineWith(r.stdout, "mounted the project in the VM again"))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the project's link was not made again")
		}
	}
	readme := "cat " + vm.GuestProjectDir + "/README; podman exec $(podman ps -q --filter label=" + sandbox.LabelAgent + "=agent-1) cat " + sandbox.ProjectPath(true) + "/README"
	if out := shell(readme); strings.Count(out, "the project, read-only in the VM") != 2 {
		t.Errorf("the project after its link was made again (guest, then agent-1's container): %q", out)
	}
	if r := runIn(t, dir, env, "", "restart", "agent-1"); r.code != 0 {
		t.Fatalf("restart agent-1: %+v", r)
	}
	waitHealthy(t, dir, env, "after the project's link was made again", 3*time.Minute, diag)
	check("a new container after the project's link died")

	if r := runIn(t, dir, env, "", "stop"); r.code != 0 {
		t.Fatalf("stop: %+v", r)
	}
	if st := instanceStatus(t, limactl, limaHome, inst); st != "Stopped" {
		t.Fatalf("VM after stop: %s", st)
	}
	start("warm")
	check("warm")

	// reinstall drops the images in the VM and rebuilds them.
	t0 := time.Now()
	if r := runIn(t, dir, env, "", "reinstall"); r.code != 0 {
		t.Fatalf("reinstall: %+v", r)
	}
	t.Logf("reinstall: %s", time.Since(t0).Round(100*time.Millisecond))
	check("after reinstall")

	r := runIn(t, dir, env, "", "destroy", "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "run `thesystem start` to rebuild") {
		t.Fatalf("destroy: %+v", r)
	}
	if left := instances(t, limactl, limaHome); len(left) != 0 {
		t.Fatalf("VMs after destroy: %v", left)
	}
	for _, d := range []string{"guest-bin", "run/agents"} {
		if _, err := os.Stat(filepath.Join(state, d)); err == nil {
			t.Errorf("%s left after destroy", d)
		}
	}
}

// killProjectLink kills the engine's SSH connection that carries the
// project's mount (what a real sleep does to it): its pid.
func killProjectLink(t *testing.T) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		argv := strings.Split(string(b), "\x00")
		if len(argv) > 0 && filepath.Base(argv[0]) == "ssh" && strings.Contains(string(b), "ControlPath=none") && strings.Contains(string(b), "sshfs") {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill the project's link: %v", err)
			}
			return pid
		}
	}
	t.Fatal("no SSH connection carries the project's mount")
	return 0
}

// waitHealthy waits until every component is healthy. Under TCG a
// liveness probe may miss while the guest is busy (a component then shows
// degraded for a moment): that is not a failure, but a component that
// fails, or is still not healthy at the deadline, is, and the test says
// which and why.
func waitHealthy(t *testing.T, dir string, env []string, what string, within time.Duration, diag func() string) {
	t.Helper()
	t0 := time.Now()
	var seen []string // every state other than healthy, once each
	note := func(c api.Component) {
		s := fmt.Sprintf("%s %s (%s)", c.Name, c.State, firstOf(c.Detail, c.LastError))
		if !slices.Contains(seen, s) {
			seen = append(seen, s)
		}
	}
	for deadline := t0.Add(within); ; time.Sleep(time.Second) {
		var st api.Status
		r := runIn(t, dir, env, "", "status", "--json")
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("%s: status: %v: %+v", what, err, r)
		}
		var bad []api.Component
		for _, c := range st.Components {
			if c.State != api.StateHealthy {
				bad = append(bad, c)
				note(c)
			}
		}
		if len(bad) == 0 && len(st.Components) > 0 {
			if len(seen) > 0 {
				t.Logf("%s: all healthy after %s; on the way: %s", what, time.Since(t0).Round(time.Second), strings.Join(seen, "; "))
			}
			return
		}
		var failed []string
		for _, c := range bad {
			if c.State == api.StateFailed {
				failed = append(failed, fmt.Sprintf("%s failed: %s (%s)\n%s", c.Name, c.LastError, c.Detail, strings.Join(c.LastLines, "\n")))
			}
		}
		if len(failed) > 0 || time.Now().After(deadline) {
			var why []string
			for _, c := range bad {
				why = append(why, fmt.Sprintf("%s %s: %s %s", c.Name, c.State, c.Detail, c.LastError))
			}
			logs := runIn(t, dir, env, "", "logs", "-n", "200")
			t.Logf("logs:\n%s", logs.stdout) // the reason last: CI shows the end of what a failure printed
			t.Fatalf("%s: not all healthy after %s: %s\n%s\n%s", what, time.Since(t0).Round(time.Second),
				strings.Join(why, "; "), strings.Join(failed, "\n"), diag())
		}
	}
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func limactlRun(t *testing.T, limactl, home string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), limactl, args...)
	cmd.Env = append(os.Environ(), "LIMA_HOME="+home)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.Bytes(), err
}

type limaInstance struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

func listInstances(t *testing.T, limactl, home string) []limaInstance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, limactl, "list", "--json")
	cmd.Env = append(os.Environ(), "LIMA_HOME="+home)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("limactl list: %v", err)
	}
	var list []limaInstance
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var i limaInstance
		if dec.Decode(&i) != nil {
			return list
		}
		list = append(list, i)
	}
}

func instances(t *testing.T, limactl, home string) []string {
	var names []string
	for _, i := range listInstances(t, limactl, home) {
		names = append(names, i.Name)
	}
	return names
}

func instanceStatus(t *testing.T, limactl, home, name string) string {
	for _, i := range listInstances(t, limactl, home) {
		if i.Name == name {
			return i.Status
		}
	}
	return "missing"
}

// noKeyInTree fails if any file under dir (but the VM's disks, searched
// from inside) holds key.
func noKeyInTree(t *testing.T, dir, key string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&os.ModeType != 0 {
			return nil
		}
		switch filepath.Base(p) {
		case "diffdisk", "basedisk":
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(key)) {
			t.Errorf("%s holds the planted key", p)
		}
		return nil
	})
}

func lastLineWith(s, sub string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], sub) {
			return lines[i]
		}
	}
	return ""
}

// diagnose is what a failed run ends with, in a few lines (CI shows the
// end of the output): the host's load and free disk, whether QEMU runs
// the VM's CPUs, the guest's last console lines and, if it answers, its
// own view (load, disk, memory, containers).
func diagnose(t *testing.T, limactl, limaHome string) string {
	t.Helper()
	var b strings.Builder
	load, _ := os.ReadFile("/proc/loadavg")
	free, _ := vm.FreeBytes(limaHome)
	fmt.Fprintf(&b, "diagnosis: host load %s; %s free in %s\n", strings.Join(strings.Fields(string(load))[:3], " "), vm.HumanBytes(free), limaHome)
	for _, inst := range instances(t, limactl, limaHome) {
		l := &vm.Lima{Instance: inst, Home: limaHome}
		why := l.Diagnose(context.Background())
		if why == "" {
			why = "QEMU runs its CPUs"
		}
		fmt.Fprintf(&b, "VM %s: %s\n", inst, why)
		console, _ := os.ReadFile(filepath.Join(limaHome, inst, "serial.log"))
		lines := strings.Split(strings.TrimSpace(string(console)), "\n")
		for _, l := range lines[max(0, len(lines)-4):] {
			fmt.Fprintf(&b, "  console: %.160s\n", strings.TrimSpace(l))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		cmd := exec.CommandContext(ctx, limactl, "shell", "--workdir", "/", inst, "sh", "-c",
			`uptime; df -h / | tail -1; free -m | sed -n 2p; sudo podman ps -a --format '{{.Names}} {{.Status}}'`)
		cmd.Env = append(os.Environ(), "LIMA_HOME="+limaHome)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			fmt.Fprintf(&b, "  guest: no answer in 45 s: %v\n", err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			fmt.Fprintf(&b, "  guest: %.160s\n", l)
		}
	}
	return b.String()
}
