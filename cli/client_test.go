package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/chat"
	"github.com/thesystem-dev/thesystem/engine/chat/chattest"
)

// TestClientMode: a stack in mode client has no chat server of its own:
// its agent, its dashboard and its user join a remote one (a second
// instance of our chat server, wss:// on another 127.0.0.1 port, its
// certificate from a throwaway CA given as client.ca_file, admitting
// only the identities it was told) through the host's bridge, the
// containers still without a network. Someone on the remote mentions the
// agent and gets its answer there; the user's `chat send` reaches them.
// The remote lost, the component shows degraded with the reason; back,
// the agent answers again.
func TestClientMode(t *testing.T) {
	d := newDaemonEnv(t)
	state := envValue(d.env, "THESYSTEM_STATE_DIR")
	// The identities the remote's admin admits: the stack's own lasting
	// keys (made here first, as an admin would be told them), and
	// someone of another team.
	allow := map[string]ed25519.PublicKey{}
	for name, file := range map[string]string{"agent-1": filepath.Join(state, "identities", "agent-1.pem"), "user": filepath.Join(state, "identity.pem"),
		"dashboard": filepath.Join(state, "dashboard-identity.pem")} {
		k, err := chat.LoadOrCreateKey(file)
		if err != nil {
			t.Fatal(err)
		}
		allow[name] = k.Public().(ed25519.PublicKey)
	}
	aliceKey, _ := chat.NewKey()
	allow["alice"] = aliceKey.Public().(ed25519.PublicKey)
	remote := chattest.Serve(t, chat.Options{Channels: []string{"#general"}, Allow: allow, Observers: []string{"alice"}})

	config := func(caFile string) {
		write(t, filepath.Join(d.dir, "thesystem.yaml"), fmt.Sprintf("mode: client\nclient:\n  remote: %s\n  ca_file: %s\nproxy:\n  port: %d\n"+
			"server:\n  port: %d\n  dashboard: %d\nswarm:\n  agents: 1\nchannels: ['#general']\n", remote.URL, caFile, d.port, d.chatPort, d.dashPort))
	}
	// A CA that did not sign the remote's certificate: the start fails at
	// once, saying so.
	config(chattest.Serve(t, chat.Options{}).CAFile)
	t0 := time.Now()
	if r := d.run(t, "start"); r.code == 0 || !strings.Contains(r.stderr, "certificate") || !strings.Contains(r.stderr, "client.ca_file") {
		t.Fatalf("start with the wrong CA: %+v", r)
	}
	t.Logf("the wrong CA refused in %s", time.Since(t0).Round(100*time.Millisecond))
	config(remote.CAFile) // fixed: the next start reads it again
	if r := d.run(t, "start"); r.code != 0 {
		t.Fatalf("start: %+v", r)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = newCmd(ctx, d.dir, d.env, "stop").Run()
	})
	component := func(name string) api.Component { t.Helper(); return componentOf(t, d, name) }
	for _, name := range []string{api.ComponentChat, api.ComponentDashboard, "agent-1"} {
		if c := component(name); c.State != api.StateHealthy {
			t.Errorf("%s: %+v", name, c)
		}
	}

	alice, err := chat.Dial(t.Context(), remote.URL, chat.DialOptions{Name: "alice", Key: aliceKey, TLS: &tls.Config{RootCAs: remote.CA, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	waitInChannel(t, alice, "#general", "agent-1")
	heard := func(from, want string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		for {
			f, err := alice.Read(ctx)
			if err != nil {
				t.Fatalf("alice never heard %s say %q: %v", from, want, err)
			}
			if f.Type == chat.TypeMsg && f.FromName == from && strings.Contains(f.Content, want) && f.To == "#general" {
				return
			}
		}
	}
	if err := alice.Say(t.Context(), "#general", "@agent-1 hello from afar"); err != nil {
		t.Fatal(err)
	}
	heard("agent-1", "hello from afar") // the stand-in runtime answers with its prompt
	if r := d.run(t, "chat", "send", "#general", "hi from the client stack"); r.code != 0 {
		t.Fatalf("chat send: %+v", r)
	}
	heard("user", "hi from the client stack")

	// No TCP port of the stack's leads into the team's chat: another local
	// account has no door there (the engine reaches the bridge through
	// its socket).
	if conn, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", fmt.Sprintf("127.0.0.1:%d", d.chatPort)); err == nil {
		_ = conn.Close()
		t.Errorf("something listens on server.port %d in client mode", d.chatPort)
	}

	// The remote goes away, for longer than the agents' crashes would be
	// given up on: the component says so with the reason, the agent waits.
	remote.Stop()
	away := time.Now()
	var c api.Component
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		if c = component(api.ComponentChat); c.State == api.StateDegraded && strings.Contains(c.Detail, "remote "+remote.URL) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with the remote gone: %+v", c)
		}
	}
	t.Logf("the remote gone: %s %s: %s", c.Name, c.State, c.Detail)
	if r := d.run(t, "chat", "send", "#general", "anyone?"); r.code == 0 || !strings.Contains(r.stderr, "the chat is not reachable now") {
		t.Errorf("chat send with the remote away: %+v", r)
	}
	time.Sleep(time.Until(away.Add(40 * time.Second)))
	if a := component("agent-1"); a.State == api.StateFailed {
		t.Fatalf("the agent was given up on while the remote was away: %+v", a)
	}
	remote.Start()
	t.Cleanup(func() {
		if t.Failed() { // what the agent and the bridge did since the remote came back
			for _, args := range [][]string{{"logs", "agent-1", "-n", "60"}, {"logs", "agentchat-server", "-n", "30"}, {"status"}} {
				out, _ := newCmd(context.Background(), d.dir, d.env, args...).CombinedOutput()
				t.Logf("$ thesystem %s\n%s", strings.Join(args, " "), out)
			}
			if os.Getenv("THESYSTEM_TEST_STACKS") != "" { // the daemon's goroutines, to see what waits
				var st api.Status
				out, _ := newCmd(context.Background(), d.dir, d.env, "status", "--json").Output()
				if json.Unmarshal(out, &st) == nil && st.PID > 0 {
					_ = syscall.Kill(st.PID, syscall.SIGQUIT)
					time.Sleep(2 * time.Second)
					b, _ := os.ReadFile(filepath.Join(envValue(d.env, "THESYSTEM_STATE_DIR"), "daemon.log"))
					t.Logf("daemon stacks:\n%s", b[max(0, len(b)-200000):])
				}
			}
		}
	})
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		if c = component(api.ComponentChat); c.State == api.StateHealthy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the remote back: %+v", c)
		}
	}
	alice2, err := chat.Dial(t.Context(), remote.URL, chat.DialOptions{Name: "alice", Key: aliceKey, TLS: &tls.Config{RootCAs: remote.CA, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	defer alice2.Close()
	alice = alice2
	waitInChannel(t, alice, "#general", "agent-1")
	if err := alice.Say(t.Context(), "#general", "@agent-1 are you back?"); err != nil {
		t.Fatal(err)
	}
	heard("agent-1", "are you back?")
}

// waitInChannel joins channel as c until name is in it.
func waitInChannel(t *testing.T, c *chat.Client, channel, name string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err := c.Join(t.Context(), channel); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		for {
			f, err := c.Read(ctx)
			if err != nil {
				cancel()
				t.Fatalf("join %s: %v", channel, err)
			}
			if f.Type != chat.TypeJoined {
				continue
			}
			for _, a := range f.Agents {
				if a.Name == name {
					cancel()
					return
				}
			}
			break
		}
		cancel()
	}
	t.Fatalf("%s never came into %s", name, channel)
}
