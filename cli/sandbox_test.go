package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// initSetup is a socket directory as the container host prepares it: the
// agent's token and two unix sockets, here a fake proxy that records what
// reaches it and a fake chat server.
type initSetup struct {
	dir        string
	proxyAddr  string
	chatAddr   string
	mu         sync.Mutex
	proxyAuths []string
}

func newInitSetup(t *testing.T) *initSetup {
	t.Helper()
	s := &initSetup{dir: t.TempDir(), proxyAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), chatAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	write(t, filepath.Join(s.dir, "token"), "tsa_"+strings.Repeat("ab", 32)+"\n")
	var lc net.ListenConfig
	for name, h := range map[string]http.HandlerFunc{
		"agentauth.sock": func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.proxyAuths = append(s.proxyAuths, r.URL.Path+" "+r.Header.Get("X-Api-Key"))
			s.mu.Unlock()
			_, _ = w.Write([]byte(`{"proxied":true}`))
		},
		"chat.sock": func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"healthy"}`)) },
	} {
		ln, err := lc.Listen(t.Context(), "unix", filepath.Join(s.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	return s
}

func (s *initSetup) cmd(t *testing.T, argv ...string) *exec.Cmd {
	args := append([]string{"sandbox-init", "--socket-dir", s.dir, "--chat-socket", filepath.Join(s.dir, "chat.sock"), "--token-file", filepath.Join(s.dir, "token"), "--proxy-addr", s.proxyAddr, "--chat-addr", s.chatAddr, "--"}, argv...)
	cmd := exec.CommandContext(t.Context(), binary, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "ANTHROPIC_MODEL=claude-x", "ANTHROPIC_BASE_URL=https://api.anthropic.com"}
	return cmd
}

// The runtime stand-in: report its environment, call the proxy and the
// chat server through the loopback addresses it was given.
const childScript = `
import json, os, urllib.request
env = {k: v for k, v in os.environ.items() if k.endswith(("_BASE_URL", "_API_KEY", "_URL", "_TOKEN")) or k == "ANTHROPIC_MODEL"}
req = urllib.request.Request(os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages", data=b"{}", headers={"x-api-key": os.environ["ANTHROPIC_API_KEY"]})
proxied = urllib.request.urlopen(req).read().decode()
chat = urllib.request.urlopen(os.environ["AGENTCHAT_URL"].replace("ws://", "http://") + "/health").read().decode()
print(json.dumps({"env": env, "proxied": proxied, "chat": chat}))
`

func TestSandboxInit(t *testing.T) {
	py, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		t.Skip("/usr/bin/python3 not installed")
	}
	s := newInitSetup(t)
	cmd := s.cmd(t, py, "-c", childScript)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	var got struct {
		Env     map[string]string
		Proxied string
		Chat    string
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	token := "tsa_" + strings.Repeat("ab", 32)
	for k, want := range map[string]string{
		"ANTHROPIC_BASE_URL": "http://" + s.proxyAddr + "/anthropic", // ours wins over the inherited one
		"ANTHROPIC_API_KEY":  token,
		"OPENAI_BASE_URL":    "http://" + s.proxyAddr + "/openai/v1",
		"GROQ_BASE_URL":      "http://" + s.proxyAddr + "/groq/v1",
		"GOOGLE_BASE_URL":    "http://" + s.proxyAddr + "/google",
		"AGENTAUTH_TOKEN":    token,
		"AGENTCHAT_URL":      "ws://" + s.chatAddr,
		"ANTHROPIC_MODEL":    "claude-x",
	} {
		if got.Env[k] != want {
			t.Errorf("%s = %q, want %q", k, got.Env[k], want)
		}
	}
	if got.Proxied != `{"proxied":true}` || got.Chat != `{"status":"healthy"}` {
		t.Errorf("through the loopback relays: proxy %q chat %q", got.Proxied, got.Chat)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.proxyAuths) != 1 || s.proxyAuths[0] != "/anthropic/v1/messages "+token {
		t.Errorf("the proxy socket saw %q", s.proxyAuths)
	}
}

func procStat(pid int) (state string, ppid int, comm string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, ""
	}
	i := bytes.LastIndexByte(b, ')')
	comm = string(b[bytes.IndexByte(b, '(')+1 : i])
	f := strings.Fields(string(b[i+2:]))
	ppid, _ = strconv.Atoi(f[1])
	return f[0], ppid, comm
}

func childrenOf(pid int) (all, zombies []string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, pp, comm := procStat(n); pp == pid {
			all = append(all, comm)
			if st == "Z" {
				zombies = append(zombies, comm)
			}
		}
	}
	return all, zombies
}

// TestSandboxInitReapsAndExits: an orphan of the runtime is adopted and
// reaped, and the init exits with the runtime's status.
func TestSandboxInitReapsAndExits(t *testing.T) {
	s := newInitSetup(t)
	cmd := s.cmd(t, "sh", "-c", "(sleep 0.3 &); sleep 1.2; exit 7")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	initPID := cmd.Process.Pid
	adopted := false
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		all, _ := childrenOf(initPID)
		for _, c := range all {
			if c == "sleep" {
				adopted = true
			}
		}
		if adopted {
			break
		}
	}
	if !adopted {
		t.Error("the orphaned sleep was not adopted by the init")
	}
	time.Sleep(600 * time.Millisecond) // the orphan has exited by now
	if _, z := childrenOf(initPID); len(z) > 0 {
		t.Errorf("zombies under the init: %v", z)
	}
	err := cmd.Wait()
	if cmd.ProcessState.ExitCode() != 7 {
		t.Errorf("exit %v, want 7", err)
	}
}

func TestSandboxInitForwardsSignals(t *testing.T) {
	s := newInitSetup(t)
	cmd := s.cmd(t, "sh", "-c", `trap "exit 42" TERM; while :; do sleep 0.05; done`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("init did not exit after SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 42 {
		t.Errorf("exit %d, want 42 (the runtime's own)", code)
	}
}

func TestSandboxInitErrors(t *testing.T) {
	s := newInitSetup(t)
	_ = os.Remove(filepath.Join(s.dir, "token"))
	var errb bytes.Buffer
	cmd := s.cmd(t, "true")
	cmd.Stderr = &errb
	_ = cmd.Run()
	if cmd.ProcessState.ExitCode() == 0 || !strings.Contains(errb.String(), "agent token:") {
		t.Errorf("without a token: %d %s", cmd.ProcessState.ExitCode(), errb.String())
	}
}
