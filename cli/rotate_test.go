package cli

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/chat"
)

// buildVMCheck builds the test runtime that calls the provider through the
// proxy and prints what it got (cli/testdata/vmcheck).
func buildVMCheck(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vmcheck")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./testdata/vmcheck")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build vmcheck: %v\n%s", err, out)
	}
	return bin
}

// TestAgentAfterTokenRotation: `keys rotate --tokens` revokes every agent's
// token and hands each agent its new one, so a running agent still reaches
// the provider (it used to get 401 while status said healthy).
func TestAgentAfterTokenRotation(t *testing.T) {
	d := newDaemonEnv(t)
	const planted = "sk-ant-api03-PLANTEDrotate0123456789abcdefgh"
	up := &upstreamRecorder{}
	fake := httptest.NewServer(up)
	defer fake.Close()
	d.env = append(d.env, "THESYSTEM_CLAUDE_BIN="+buildVMCheck(t)) // the last one wins
	d.startStack(t, fmt.Sprintf("proxy:\n  port: %d\n  upstreams:\n    anthropic: %s\nserver:\n  port: %d\n  dashboard: %d\nswarm:\n  agents: 1\nchannels: ['#general']\n",
		d.port, fake.URL, d.chatPort, d.dashPort), planted)
	ask := func(when string) {
		t.Helper()
		answer := askAgent(t, d.env, "agent-1", "check", time.Minute)
		var res map[string]string
		if err := json.Unmarshal([]byte(answerText(answer)), &res); err != nil {
			t.Fatalf("%s: the agent answered %q", when, answer)
		}
		if !strings.HasPrefix(res["proxy"], "200 ") || up.last() != planted {
			t.Fatalf("%s: through the proxy: %q; the upstream got the stored key: %v", when, res["proxy"], up.last() == planted)
		}
	}
	ask("before the rotation")
	handedOverToNoAccount(t, d.env)
	r := d.run(t, "keys", "rotate", "--tokens")
	if r.code != 0 || !strings.Contains(r.stdout+r.stderr, "1") {
		t.Fatalf("rotate: %+v", r)
	}
	ask("after the rotation")

	// A chat key lives as long as its agent's run: restarted, agent-1
	// proves itself with a new key, and the old one is refused.
	old := agentChatKeys(t, d.env, "agent-1")
	if len(old) != 1 {
		t.Fatalf("agent-1's chat keys: %d, want 1", len(old))
	}
	if r := d.run(t, "restart", "swarm"); r.code != 0 {
		t.Fatalf("restart: %+v", r)
	}
	ask("after a restart")
	if now := agentChatKeys(t, d.env, "agent-1"); len(now) != 1 || now[0].Equal(old[0]) {
		t.Fatalf("agent-1's chat keys after its restart: %d, the old one: %v", len(now), len(now) == 1 && now[0].Equal(old[0]))
	}
	// Its run's end revoked it (the new run's admission would have too).
	if r := d.run(t, "logs", "chat", "-n", "500"); !hasLine(r.stdout, "msg=revoke", "name=agent-1") {
		t.Errorf("the chat server's log has no revocation of agent-1:\n%s", r.stdout)
	}
	_, err := chat.Dial(t.Context(), fmt.Sprintf("ws://127.0.0.1:%d", d.chatPort), chat.DialOptions{Name: "agent-1", Key: old[0]})
	var refused *chat.RefusedError
	if !errors.As(err, &refused) || refused.Code != chat.CodeAuthRequired {
		t.Errorf("agent-1's key of its last run: %v, want it refused", err)
	}
}

// handedOverToNoAccount: what the host hands to the containers (token
// dirs, keys, the services' sockets) belongs to us or to a uid that no
// account of this host has: the agents' uid 1000 is mapped away, since
// the host's uid 1000 is often a person.
func handedOverToNoAccount(t *testing.T, env []string) {
	t.Helper()
	run := envValue(env, "THESYSTEM_RUNTIME_DIR")
	seen := 0
	for _, dir := range []string{"agents", "services", "dashboard"} {
		_ = filepath.WalkDir(filepath.Join(run, dir), func(path string, _ fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			fi, err := os.Lstat(path)
			if err != nil {
				return nil
			}
			uid := fi.Sys().(*syscall.Stat_t).Uid
			if int(uid) == os.Getuid() {
				return nil
			}
			seen++
			if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
				t.Errorf("%s belongs to %s (uid %d), an account of this host", path, u.Username, uid)
			} else if uid >= 1000 && uid <= 60000 { // useradd's UID_MIN..UID_MAX
				t.Errorf("%s belongs to uid %d, which useradd gives the next person", path, uid)
			}
			return nil
		})
	}
	if os.Getuid() == 0 && seen == 0 {
		t.Error("nothing handed over to the agents' uid")
	}
}

// hasLine: a line of text holds every one of parts.
func hasLine(text string, parts ...string) bool {
	for _, l := range strings.Split(text, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

// agentChatKeys are the chat keys in the agent's token dirs (one a run).
func agentChatKeys(t *testing.T, env []string, name string) []ed25519.PrivateKey {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(envValue(env, "THESYSTEM_RUNTIME_DIR"), "agents", name, "*", "identity.pem"))
	var keys []ed25519.PrivateKey
	for _, f := range files {
		k, err := chat.ReadKey(f)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}

// chatAdmitsOnlyIssued: the stack's chat server, reached like any local
// process would (the host's relay), refuses an ephemeral client, an
// unknown key and the user's own key claiming an agent's name, and takes
// the user's identity under its own name.
func chatAdmitsOnlyIssued(t *testing.T, env []string, chatPort int) {
	t.Helper()
	user, err := chat.ReadKey(filepath.Join(envValue(env, "THESYSTEM_STATE_DIR"), "identity.pem"))
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := chat.NewKey()
	for _, tc := range []struct {
		as  string
		key ed25519.PrivateKey
		ok  bool
	}{
		{"agent-1", nil, false},
		{"mallory", nil, false},
		{"agent-1", stranger, false},
		{"agent-1", user, false},
		{"user", user, true},
	} {
		c, err := chat.Dial(t.Context(), fmt.Sprintf("ws://127.0.0.1:%d", chatPort), chat.DialOptions{Name: tc.as, Key: tc.key})
		if err == nil {
			_ = c.Close()
		}
		var refused *chat.RefusedError
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s (key %v) refused: %v", tc.as, tc.key != nil, err)
		case !tc.ok && (!errors.As(err, &refused) || refused.Code != chat.CodeAuthRequired):
			t.Errorf("%s (key %v): %v, want it refused", tc.as, tc.key != nil, err)
		}
	}
}
