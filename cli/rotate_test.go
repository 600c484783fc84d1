package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

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
	write(t, filepath.Join(d.dir, "thesystem.yaml"), fmt.Sprintf("proxy:\n  port: %d\n  upstreams:\n    anthropic: %s\nserver:\n  port: %d\n  dashboard: %d\nswarm:\n  agents: 1\nchannels: ['#general']\n",
		d.port, fake.URL, d.chatPort, d.dashPort))
	if r := runIn(t, d.dir, d.env, planted, "keys", "set", "anthropic"); r.code != 0 {
		t.Fatalf("keys set: %+v", r)
	}
	if r := d.run(t, "start"); r.code != 0 {
		t.Fatalf("start: %+v", r)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = newCmd(ctx, d.dir, d.env, "stop").Run()
	}()
	ask := func(when string) {
		t.Helper()
		answer := askAgent(t, d.env, d.chatPort, "agent-1", "check", time.Minute)
		var res map[string]string
		if err := json.Unmarshal([]byte(strings.TrimSpace(answer)), &res); err != nil {
			t.Fatalf("%s: the agent answered %q", when, answer)
		}
		if !strings.HasPrefix(res["proxy"], "200 ") || up.last() != planted {
			t.Fatalf("%s: through the proxy: %q; the upstream got the stored key: %v", when, res["proxy"], up.last() == planted)
		}
	}
	ask("before the rotation")
	r := d.run(t, "keys", "rotate", "--tokens")
	if r.code != 0 || !strings.Contains(r.stdout+r.stderr, "1") {
		t.Fatalf("rotate: %+v", r)
	}
	ask("after the rotation")
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
		ws, resp, err := websocket.Dial(t.Context(), fmt.Sprintf("ws://127.0.0.1:%d", chatPort), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Body != nil {
			_ = resp.Body.Close()
		}
		_, err = chat.Identify(t.Context(), ws, tc.as, tc.key)
		_ = ws.CloseNow()
		var refused *chat.RefusedError
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s (key %v) refused: %v", tc.as, tc.key != nil, err)
		case !tc.ok && (!errors.As(err, &refused) || refused.Code != chat.CodeAuthRequired):
			t.Errorf("%s (key %v): %v, want it refused", tc.as, tc.key != nil, err)
		}
	}
}
