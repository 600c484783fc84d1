package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
)

// proc is one process as /proc says it.
type proc struct {
	pid, ppid int
	comm, cmd string
	ticks     int64 // user+system clock ticks
	switches  int64 // context switches, voluntary and not: its wakeups
}

// procs reads every process.
func procs() map[int]proc {
	out := map[int]proc{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		f := strings.Fields(s[close+2:])
		ppid, _ := strconv.Atoi(f[1])
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		p := proc{pid: pid, ppid: ppid, comm: s[open+1 : close], ticks: u + st}
		if c, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
			p.cmd = strings.ReplaceAll(strings.TrimRight(string(c), "\x00"), "\x00", " ")
		}
		// Every thread's switches (a Go program's work is in its threads).
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		for _, task := range tasks {
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(status), "\n") {
				if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					p.switches += n
				}
				if v, ok := strings.CutPrefix(line, "nonvoluntary_ctxt_switches:"); ok {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					p.switches += n
				}
			}
		}
		out[pid] = p
	}
	return out
}

// stackProcs are the stack's processes: the daemon and what descends
// from it, and whatever runs with the stack's own podman storage (the
// podman service, conmon) and what descends from those (the containers).
func stackProcs(all map[int]proc, daemon int, marker string) map[int]string {
	roots := map[int]string{daemon: "daemon"}
	for pid, p := range all {
		switch {
		case p.comm == "conmon" && strings.Contains(p.cmd, marker):
			roots[pid] = "conmon"
		case strings.Contains(p.cmd, marker) && strings.Contains(p.cmd, "system service"):
			roots[pid] = "podman service"
		}
	}
	out := map[int]string{}
	for pid := range all {
		// Up the tree to a root: the root's label, or a container's.
		for p, hops := pid, 0; p > 1 && hops < 64; p, hops = all[p].ppid, hops+1 {
			if label, ok := roots[p]; ok {
				if p != pid && label == "conmon" {
					label = "container: " + all[pid].comm
				} else if p != pid {
					label = label + " child: " + all[pid].comm
				}
				out[pid] = label
				break
			}
		}
	}
	return out
}

// BenchmarkIdle: the stack up (two agents, the stand-in runtime) and
// nothing happening, for 30 s: the CPU time and the wakeups (context
// switches) of every process of the stack, per group, beside a daemon
// with no stack in the same run (the baseline: an engine at rest).
func BenchmarkIdle(b *testing.B) {
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		b.Skip("run under .ci/with-keyring (make bench)")
	}
	pdir := b.TempDir()
	args := fmt.Sprintf("--root %s/root --runroot %s/runroot --storage-driver vfs", pdir, pdir)
	if err := os.WriteFile(filepath.Join(pdir, "containers.conf"), []byte(testContainersConf), 0o644); err != nil {
		b.Fatal(err)
	}
	state := b.TempDir()
	env := []string{
		fmt.Sprintf("THESYSTEM_KEYRING_SERVICE=thesystem-bench-%d", time.Now().UnixNano()),
		"THESYSTEM_STATE_DIR=" + state, "THESYSTEM_RUNTIME_DIR=" + filepath.Join(state, "run"),
		"CONTAINERS_CONF=" + filepath.Join(pdir, "containers.conf"), "THESYSTEM_PODMAN_ARGS=" + args, "THESYSTEM_CLAUDE_BIN=/bin/echo",
	}
	c := &api.Client{Socket: filepath.Join(state, "run", "api.sock")}
	dir := b.TempDir()
	var lc net.ListenConfig
	var ports [3]int
	for i := range ports {
		ln, _ := lc.Listen(b.Context(), "tcp", "127.0.0.1:0")
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
	}
	if err := os.WriteFile(filepath.Join(dir, "thesystem.yaml"), fmt.Appendf(nil, "proxy:\n  port: %d\nserver:\n  port: %d\n  dashboard: %d\nswarm:\n  agents: 2\n",
		ports[0], ports[1], ports[2]), 0o644); err != nil {
		b.Fatal(err)
	}
	const window = 30 * time.Second
	// measure returns, for the window, each group's ticks and wakeups:
	// the stack's processes (daemon's pid and the podman service and
	// conmons of pdir) and those of extra pids (their children too).
	measure := func(daemon int, extra map[int]string) map[string][2]int64 {
		before := procs()
		time.Sleep(window)
		after := procs()
		groups := map[string][2]int64{}
		labels := stackProcs(after, daemon, pdir)
		for pid, label := range extra {
			for child, l := range stackProcs(after, pid, "\x00") {
				labels[child] = strings.Replace(l, "daemon", label, 1)
			}
		}
		for pid, label := range labels {
			p0, ok := before[pid]
			if !ok {
				p0 = proc{} // started in the window: all of it counts
			}
			g := groups[label]
			g[0] += after[pid].ticks - p0.ticks
			g[1] += after[pid].switches - p0.switches
			groups[label] = g
		}
		return groups
	}
	// The baseline of podman's own: a podman service of the same podman,
	// with a storage of its own and no container, measured in the same
	// window as the stack (podman's service wakes ten times a second
	// whatever it serves: its image events loop polls).
	bare := b.TempDir()
	alone := exec.CommandContext(b.Context(), "podman", "--root", bare+"/root", "--runroot", bare+"/runroot", "--storage-driver", "vfs",
		"system", "service", "--time", "0", "unix://"+bare+"/podman.sock")
	alone.Env = append(os.Environ(), "CONTAINERS_CONF="+filepath.Join(pdir, "containers.conf"))
	if err := alone.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = alone.Process.Kill(); _ = alone.Wait() }()
	// The baseline, in the same run: an engine at rest (a daemon of its
	// own, no stack), then shut down.
	rest := func() [2]int64 {
		cmd := newCmd(b.Context(), dir, env, "daemon")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = c.Shutdown(context.Background()); _ = cmd.Wait() }()
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if _, err := c.Status(b.Context()); err == nil {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the daemon did not answer")
			}
		}
		return measure(cmd.Process.Pid, nil)["daemon"]
	}()
	for b.Loop() {
		r := runBench(b, dir, env, "start")
		if r.code != 0 {
			b.Fatalf("start: %+v", r)
		}
		st, err := c.Status(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(10 * time.Second) // settled
		up := measure(st.PID, map[int]string{alone.Process.Pid: "podman service alone"})
		podmanAlone := up["podman service alone"]
		delete(up, "podman service alone")
		if r := runBench(b, dir, env, "stop"); r.code != 0 {
			b.Fatalf("stop: %+v", r)
		}
		names := make([]string, 0, len(up))
		for n := range up {
			names = append(names, n)
		}
		sort.Strings(names)
		var lines []string
		var total [2]int64
		for _, n := range names {
			g := up[n]
			total[0] += g[0]
			total[1] += g[1]
			lines = append(lines, fmt.Sprintf("  %-40s %4d ticks (%.2f %% of a core)  %6d wakeups (%.1f/s)", n, g[0], float64(g[0])/window.Seconds(), g[1], float64(g[1])/window.Seconds()))
		}
		pod := up["podman service"]
		b.Logf("idle for %s, the stack up (2 agents):\n%s\n  %-40s %4d ticks (%.2f %%)  %6d wakeups\n"+
			"baselines in the same run: the engine at rest, no stack: %d ticks, %d wakeups; the stack's wakeups are %.1f× that\n"+
			"  a podman service alone, no container (same window): %d ticks, %d wakeups; the stack's podman service: %.2f× its ticks, %.2f× its wakeups",
			window, strings.Join(lines, "\n"), "all", total[0], float64(total[0])/window.Seconds(), total[1], rest[0], rest[1], float64(total[1])/float64(max(rest[1], 1)),
			podmanAlone[0], podmanAlone[1], float64(pod[0])/float64(max(podmanAlone[0], 1)), float64(pod[1])/float64(max(podmanAlone[1], 1)))
		b.ReportMetric(float64(pod[1])/float64(max(podmanAlone[1], 1)), "podman-wakeups-vs-alone")
		b.ReportMetric(float64(total[0])/window.Seconds(), "idle-cpu-%")
		b.ReportMetric(float64(total[1])/window.Seconds(), "wakeups/s")
		b.ReportMetric(float64(up["podman service"][0])/window.Seconds(), "podman-cpu-%")
		b.ReportMetric(float64(up["daemon"][0])/window.Seconds(), "daemon-cpu-%")
		b.ReportMetric(float64(total[1])/float64(max(rest[1], 1)), "wakeups-vs-rest")
	}
}
