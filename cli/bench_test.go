package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
)

// cpuTicks is a process's user+system time in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th fields of the whole line.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s, nil
}

func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}

// BenchmarkDaemon measures the real daemon with the stack up: `status`
// round trips over the API socket against a bare HTTP round trip on a unix
// socket (the transport's floor) in the same run, the daemon's CPU use
// while idle, and its resident memory before and after the stack starts.
func BenchmarkDaemon(b *testing.B) {
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		b.Skip("run under .ci/with-keyring (make bench)")
	}
	state := b.TempDir()
	env := []string{
		fmt.Sprintf("THESYSTEM_KEYRING_SERVICE=thesystem-bench-%d", time.Now().UnixNano()),
		"THESYSTEM_STATE_DIR=" + state, "THESYSTEM_RUNTIME_DIR=" + filepath.Join(state, "run"),
	}
	var lc net.ListenConfig
	pl, err := lc.Listen(b.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := pl.Addr().(*net.TCPAddr).Port
	_ = pl.Close()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "thesystem.yaml"), fmt.Appendf(nil, "proxy:\n  port: %d\n", port), 0o644); err != nil {
		b.Fatal(err)
	}
	c := &api.Client{Socket: filepath.Join(state, "run", "api.sock")}
	r := runBench(b, dir, env, "start")
	if r.code != 0 {
		b.Fatalf("start: %+v", r)
	}
	defer func() { _ = c.Shutdown(context.Background()) }()
	st, err := c.Status(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	pid := st.PID

	// The transport's floor: a bare handler on a unix socket.
	bsock := filepath.Join(b.TempDir(), "base.sock")
	bl, err := lc.Listen(b.Context(), "unix", bsock)
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}\n")) }), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(bl) }()
	defer srv.Close()
	base := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", bsock)
	}}}

	var statusTotal, baseTotal time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if _, err := c.Status(b.Context()); err != nil {
			b.Fatal(err)
		}
		statusTotal += time.Since(t0)
		t0 = time.Now()
		req, _ := http.NewRequestWithContext(b.Context(), "GET", "http://x/", nil)
		resp, err := base.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
		baseTotal += time.Since(t0)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(statusTotal.Microseconds())/n, "status-µs")
	b.ReportMetric(float64(baseTotal.Microseconds())/n, "bare-unix-http-µs")
	b.ReportMetric(float64(statusTotal)/float64(baseTotal), "status-ratio")

	// Idle: 10 s with the stack up and nobody asking.
	const idle = 10 * time.Second
	t0, err := cpuTicks(pid)
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(idle)
	t1, _ := cpuTicks(pid)
	const ticksPerSecond = 100 // USER_HZ on Linux
	b.ReportMetric(float64(t1-t0)/ticksPerSecond/idle.Seconds()*100, "idle-cpu-%")
	rss, _ := rssKiB(pid)
	b.ReportMetric(float64(rss)/1024, "rss-MiB")
}

func runBench(b *testing.B, dir string, env []string, args ...string) result {
	b.Helper()
	cmd := newCmd(b.Context(), dir, env, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		code = cmd.ProcessState.ExitCode()
	}
	return result{code, out.String(), errb.String()}
}

// BenchmarkStackStart measures `thesystem start` to all-healthy with 1, 4
// and 16 agents (the real daemon, podman service and containers; the
// agents' runtime is /bin/echo), each after a cold first start that builds
// the images, and the marginal time per agent container.
func BenchmarkStackStart(b *testing.B) {
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
	ports := func() (int, int, int) {
		var lc net.ListenConfig
		var out [3]int
		for i := range out {
			ln, _ := lc.Listen(b.Context(), "tcp", "127.0.0.1:0")
			out[i] = ln.Addr().(*net.TCPAddr).Port
			_ = ln.Close()
		}
		return out[0], out[1], out[2]
	}
	startStop := func(agents int) time.Duration {
		p1, p2, p3 := ports()
		cfg := fmt.Sprintf("proxy:\n  port: %d\nserver:\n  port: %d\n  dashboard: %d\nswarm:\n  agents: %d\n", p1, p2, p3, agents)
		if err := os.WriteFile(filepath.Join(dir, "thesystem.yaml"), []byte(cfg), 0o644); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		r := runBench(b, dir, env, "start")
		d := time.Since(t0)
		if r.code != 0 {
			b.Fatalf("start with %d agents: %+v", agents, r)
		}
		st, err := c.Status(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if r := runBench(b, dir, env, "stop"); r.code != 0 {
			b.Fatalf("stop: %+v", r)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", st.PID)); err != nil {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("daemon did not exit")
			}
		}
		return d
	}
	cold := startStop(1)
	b.ResetTimer()
	var d1, d4, d16 time.Duration
	for b.Loop() {
		d1 += startStop(1)
		d4 += startStop(4)
		d16 += startStop(16)
	}
	b.StopTimer()
	n := time.Duration(b.N)
	b.ReportMetric(cold.Seconds(), "cold-start-1-agent-s")
	b.ReportMetric((d1 / n).Seconds(), "start-1-agent-s")
	b.ReportMetric((d4 / n).Seconds(), "start-4-agents-s")
	b.ReportMetric((d16 / n).Seconds(), "start-16-agents-s")
	b.ReportMetric(float64((d16-d1)/n/15)/1e6, "per-agent-ms")
}

// BenchmarkTask: a task's latency as the user sees it, from `chat send`
// to the agent's first progress line and to its answer, with the real
// claude-code in its sandbox (the Debian image, no network, the key
// injected by the proxy) and the fake upstream on 127.0.0.1 — beside the
// same prompt run by a bare `claude -p` on the host against the same
// upstream (its first tool_use event, its exit), interleaved in one run.
// The ratios are what the sandbox, the proxy and the chat cost.
func BenchmarkTask(b *testing.B) {
	d, up, _ := startWorkStack(b, 1)
	claudeBin := os.Getenv("THESYSTEM_TEST_CLAUDE")
	c := d.client()
	sandboxed := func() (progress, answer time.Duration) {
		ctx, cancel := context.WithTimeout(b.Context(), 3*time.Minute)
		defer cancel()
		msgs := make(chan api.ChatMessage, 64)
		go func() {
			_ = c.FollowChat(ctx, "", 0, func(m api.ChatMessage) bool { msgs <- m; return true })
		}()
		time.Sleep(100 * time.Millisecond) // the stream is open
		// A new conversation each time, as the bare run has: the same
		// turns (a tool use, then the answer), not a resumed one.
		if err := c.ChatSend(ctx, "agent-1", "/reset"); err != nil {
			b.Fatal(err)
		}
		for m := range msgs {
			if m.Direct && m.From == "agent-1" {
				break
			}
		}
		t0 := time.Now()
		if err := c.ChatSend(ctx, "#general", "@agent-1 prove it"); err != nil {
			b.Fatal(err)
		}
		for {
			select {
			case m := <-msgs:
				if m.From != "agent-1" || m.Direct {
					continue
				}
				if strings.HasPrefix(m.Content, "⋯ ") {
					if progress == 0 {
						progress = time.Since(t0)
					}
					continue
				}
				return progress, time.Since(t0)
			case <-ctx.Done():
				b.Fatal("no answer in 3 minutes")
			}
		}
	}
	bare := func() (progress, answer time.Duration) {
		dir, home := b.TempDir(), b.TempDir()
		for _, args := range [][]string{{"init", "-q"}, {"commit", "-q", "--allow-empty", "-m", "base"}} {
			cmd := exec.CommandContext(b.Context(), "git", append([]string{"-c", "user.name=u", "-c", "user.email=u@x"}, args...)...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("git: %v %s", err, out)
			}
		}
		// --allowedTools, not --dangerously-skip-permissions: claude refuses that as root.
		cmd := exec.CommandContext(b.Context(), claudeBin, "-p", "--output-format", "stream-json", "--verbose", "--allowedTools", "Bash")
		cmd.Stdin = strings.NewReader("prove it") // as the agents get their task
		cmd.Dir = dir
		cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "ANTHROPIC_BASE_URL=" + up.url, "ANTHROPIC_API_KEY=sk-ant-bench",
			"GIT_AUTHOR_NAME=u", "GIT_AUTHOR_EMAIL=u@x", "GIT_COMMITTER_NAME=u", "GIT_COMMITTER_EMAIL=u@x",
			"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1", "DISABLE_TELEMETRY=1"}
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		var errb bytes.Buffer
		cmd.Stderr = &errb
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 0, 1<<16), 1<<24)
		for sc.Scan() {
			if progress == 0 && strings.Contains(sc.Text(), `"tool_use"`) {
				progress = time.Since(t0)
			}
		}
		if err := cmd.Wait(); err != nil {
			b.Fatalf("bare claude: %v: %s", err, errb.String())
		}
		return progress, time.Since(t0)
	}
	sandboxed() // the first task also starts the conversation
	bare()
	var sp, sa, bp, ba time.Duration
	for b.Loop() {
		p, a := sandboxed()
		sp, sa = sp+p, sa+a
		p, a = bare()
		bp, ba = bp+p, ba+a
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) / n }
	b.ReportMetric(ms(sp), "send-to-progress-ms")
	b.ReportMetric(ms(sa), "send-to-answer-ms")
	b.ReportMetric(ms(bp), "bare-to-tool-use-ms")
	b.ReportMetric(ms(ba), "bare-to-exit-ms")
	b.ReportMetric(float64(sp)/float64(bp), "progress-ratio")
	b.ReportMetric(float64(sa)/float64(ba), "answer-ratio")
}
