package chat

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/thesystem-dev/thesystem/engine/webguard"
)

func startServer(t *testing.T, opt Options) string {
	t.Helper()
	s := New(opt)
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// client is a real WebSocket client speaking the protocol.
type client struct {
	t  *testing.T
	ws *websocket.Conn
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	ws, resp, err := websocket.Dial(t.Context(), "ws://"+addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Body != nil {
		_ = resp.Body.Close()
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &client{t: t, ws: ws}
}

func (c *client) send(m map[string]any) {
	c.t.Helper()
	b, _ := json.Marshal(m)
	if err := c.ws.Write(c.t.Context(), websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) recv() map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 5*time.Second)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatal(err)
	}
	if _, ok := m["ts"].(float64); !ok {
		c.t.Errorf("frame without ts: %s", b)
	}
	return m
}

// expect reads the next frame and checks its type.
func (c *client) expect(typ string) map[string]any {
	c.t.Helper()
	m := c.recv()
	if m["type"] != typ {
		c.t.Fatalf("got %v, want %s", m, typ)
	}
	return m
}

func (c *client) identify(name string) string {
	c.t.Helper()
	c.send(map[string]any{"type": "IDENTIFY", "name": name})
	w := c.expect("WELCOME")
	if w["name"] != name || !strings.HasPrefix(w["agent_id"].(string), "@") {
		c.t.Fatalf("welcome %v", w)
	}
	return w["agent_id"].(string)
}

func TestHealth(t *testing.T) {
	addr := startServer(t, Options{Channels: []string{"#general"}})
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+addr+"/health", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || h.Status != "healthy" || h.Channels != 1 {
		t.Fatalf("health %+v %v", h, err)
	}
}

func TestChannelsAndMessages(t *testing.T) {
	addr := startServer(t, Options{Channels: []string{"#general", "#agents"}})
	a, b := dial(t, addr), dial(t, addr)

	// Nothing before IDENTIFY.
	a.send(map[string]any{"type": "JOIN", "channel": "#general"})
	if e := a.expect("ERROR"); e["code"] != CodeAuthRequired {
		t.Errorf("join before identify: %v", e)
	}
	aid, bid := a.identify("alice"), b.identify("bob")

	a.send(map[string]any{"type": "JOIN", "channel": "#general"})
	j := a.expect("JOINED")
	if j["channel"] != "#general" || len(j["agents"].([]any)) != 1 {
		t.Errorf("joined %v", j)
	}
	b.send(map[string]any{"type": "JOIN", "channel": "#general"})
	if j := b.expect("JOINED"); len(j["agents"].([]any)) != 2 {
		t.Errorf("bob joined %v", j)
	}
	if n := a.expect("AGENT_JOINED"); n["agent"] != bid || n["name"] != "bob" || n["channel"] != "#general" {
		t.Errorf("agent joined %v", n)
	}

	// A message reaches every member, the sender included.
	a.send(map[string]any{"type": "MSG", "to": "#general", "content": "hello <b>team</b>"})
	for _, c := range []*client{a, b} {
		m := c.expect("MSG")
		if m["from"] != aid || m["from_name"] != "alice" || m["to"] != "#general" || m["content"] != "hello <b>team</b>" || m["msg_id"] == "" {
			t.Errorf("msg %v", m)
		}
	}
	// A direct message reaches the target and echoes to the sender.
	b.send(map[string]any{"type": "MSG", "to": aid, "content": "psst"})
	if m := a.expect("MSG"); m["from"] != bid || m["to"] != aid {
		t.Errorf("dm %v", m)
	}
	b.expect("MSG")

	a.send(map[string]any{"type": "LIST_CHANNELS"})
	ch := a.expect("CHANNELS")
	if list := ch["list"].([]any); len(list) != 2 || list[1].(map[string]any)["name"] != "#general" || list[1].(map[string]any)["agents"] != float64(2) {
		t.Errorf("channels %v", ch)
	}
	a.send(map[string]any{"type": "LIST_AGENTS", "channel": "#general"})
	if ag := a.expect("AGENTS"); len(ag["list"].([]any)) != 2 {
		t.Errorf("agents %v", ag)
	}
	a.send(map[string]any{"type": "PING"})
	a.expect("PONG")

	b.send(map[string]any{"type": "LEAVE", "channel": "#general"})
	b.expect("LEFT")
	if n := a.expect("AGENT_LEFT"); n["agent"] != bid {
		t.Errorf("agent left %v", n)
	}
	// After LEAVE, bob may not send to the channel.
	b.send(map[string]any{"type": "MSG", "to": "#general", "content": "x"})
	if e := b.expect("ERROR"); e["code"] != CodeNotInvited {
		t.Errorf("%v", e)
	}
	// Disconnecting tells the channel.
	b.send(map[string]any{"type": "JOIN", "channel": "#general"})
	b.expect("JOINED")
	a.expect("AGENT_JOINED")
	_ = b.ws.Close(websocket.StatusNormalClosure, "bye")
	if n := a.expect("AGENT_LEFT"); n["agent"] != bid {
		t.Errorf("disconnect %v", n)
	}
}

// TestErrorsKeepTheConnection: every bad message gets an ERROR with a code
// and the connection stays usable.
func TestErrorsKeepTheConnection(t *testing.T) {
	addr := startServer(t, Options{Channels: []string{"#general"}})
	c := dial(t, addr)
	c.identify("carol")
	for _, tc := range []struct {
		name string
		msg  any
		code string
	}{
		{"unknown type", map[string]any{"type": "DANCE"}, CodeInvalidMsg},
		{"no type", map[string]any{"name": "x"}, CodeInvalidMsg},
		{"not JSON", "{nope", CodeInvalidMsg},
		{"identify twice", map[string]any{"type": "IDENTIFY", "name": "again"}, CodeInvalidMsg},
		{"bad channel", map[string]any{"type": "JOIN", "channel": "general"}, CodeInvalidMsg},
		{"no such channel", map[string]any{"type": "JOIN", "channel": "#nope"}, CodeChannelNotFound},
		{"bad target", map[string]any{"type": "MSG", "to": "general", "content": "x"}, CodeInvalidMsg},
		{"no content", map[string]any{"type": "MSG", "to": "#general"}, CodeInvalidMsg},
		{"unknown agent", map[string]any{"type": "MSG", "to": "@ffffffff", "content": "x"}, CodeAgentNotFound},
		{"list agents of nothing", map[string]any{"type": "LIST_AGENTS", "channel": "#nope"}, CodeChannelNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, ok := tc.msg.(string); ok {
				_ = c.ws.Write(t.Context(), websocket.MessageText, []byte(s))
			} else {
				c.send(tc.msg.(map[string]any))
			}
			e := c.expect("ERROR")
			if e["code"] != tc.code || e["message"] == "" {
				t.Errorf("error %v, want code %s", e, tc.code)
			}
		})
	}
	c.send(map[string]any{"type": "PING"})
	c.expect("PONG")

	bad := dial(t, addr)
	bad.send(map[string]any{"type": "IDENTIFY", "name": "no spaces allowed"})
	if e := bad.expect("ERROR"); e["code"] != CodeInvalidName {
		t.Errorf("%v", e)
	}
}

func pemOf(t *testing.T, pub ed25519.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestChallengeIdentity(t *testing.T) {
	addr := startServer(t, Options{Channels: []string{"#general"}})
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pemText := pemOf(t, pub)

	answer := func(c *client, key ed25519.PrivateKey) map[string]any {
		c.send(map[string]any{"type": "IDENTIFY", "name": "dave", "pubkey": pemText})
		ch := c.expect("CHALLENGE")
		id, nonce := ch["challenge_id"].(string), ch["nonce"].(string)
		ts := time.Now().UnixMilli()
		sig := ed25519.Sign(key, []byte(AuthSigningContent(nonce, id, ts)))
		c.send(map[string]any{"type": "VERIFY_IDENTITY", "challenge_id": id, "signature": base64.StdEncoding.EncodeToString(sig), "timestamp": ts})
		return c.recv()
	}

	good := dial(t, addr)
	w := answer(good, priv)
	if w["type"] != "WELCOME" || w["agent_id"] != "@"+PubkeyToAgentID(pemText) || w["verified"] != true {
		t.Fatalf("welcome %v", w)
	}
	if len(PubkeyToAgentID(pemText)) != 16 {
		t.Error("agent ids are 16 hex digits")
	}

	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if e := answer(dial(t, addr), other); e["type"] != "ERROR" || e["code"] != CodeVerificationFailed {
		t.Errorf("wrong key: %v", e)
	}

	c := dial(t, addr)
	c.send(map[string]any{"type": "VERIFY_IDENTITY", "challenge_id": "chal_nope", "signature": "x", "timestamp": 1})
	if e := c.expect("ERROR"); e["code"] != CodeVerificationExpired {
		t.Errorf("unknown challenge: %v", e)
	}
	c.send(map[string]any{"type": "IDENTIFY", "name": "eve", "pubkey": "not a key"})
	if e := c.expect("ERROR"); e["code"] != CodeInvalidMsg {
		t.Errorf("bad pubkey: %v", e)
	}

	// The same identity verified again takes over: the old connection goes.
	again := dial(t, addr)
	if w := answer(again, priv); w["type"] != "WELCOME" {
		t.Fatalf("second welcome %v", w)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for {
		if _, _, err := good.ws.Read(ctx); err != nil {
			break
		}
	}
}

func TestChallengeExpires(t *testing.T) {
	addr := startServer(t, Options{Channels: []string{"#general"}, ChallengeTimeout: 100 * time.Millisecond})
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	c := dial(t, addr)
	c.send(map[string]any{"type": "IDENTIFY", "name": "slow", "pubkey": pemOf(t, pub)})
	c.expect("CHALLENGE")
	if e := c.expect("ERROR"); e["code"] != CodeVerificationExpired {
		t.Errorf("%v", e)
	}
}

// TestGuard: a WebSocket from another web page or for a foreign Host is
// refused before anything is read; the dashboard's own origin is taken.
func TestGuard(t *testing.T) {
	addr := startServer(t, Options{Channels: []string{"#general"}, Guard: webguard.Guard{Origins: webguard.LocalOrigins(3000)}})
	for _, tc := range []struct {
		name   string
		header http.Header
		host   string
		ok     bool
	}{
		{"the stack's own clients", nil, "", true},
		{"the dashboard's page", http.Header{"Origin": {"http://127.0.0.1:3000"}}, "", true},
		{"another page", http.Header{"Origin": {"http://evil.example"}}, "", false},
		{"a rebinding page", nil, "evil.example", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := &websocket.DialOptions{HTTPHeader: tc.header.Clone()}
			if tc.host != "" {
				opts.Host = tc.host
			}
			ws, resp, err := websocket.Dial(t.Context(), "ws://"+addr, opts)
			if resp != nil && resp.Body != nil {
				_ = resp.Body.Close()
			}
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				_ = ws.CloseNow()
				return
			}
			if err == nil {
				_ = ws.CloseNow()
				t.Fatal("connected")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("err %v, resp %+v", err, resp)
			}
		})
	}
}

// TestSlowReadersBounded: clients that never read cannot make the server
// buffer without bound. Three idle readers in #general while 300 messages
// of 2 MiB went by took 2.4 GiB of heap before the send queue was bounded
// in bytes (8 MiB a client); now the idle readers are dropped and the heap
// stays small: 82 MiB at the peak with 300 messages, measured; the test
// sends 60 (360 MiB queued for the idle readers without the bound), which
// -race makes slow enough.
func TestSlowReadersBounded(t *testing.T) {
	addr := startServer(t, Options{Channels: []string{"#general"}, QueueBytes: 8 << 20, Rate: 1e6, Burst: 1e6})
	var idle []*client
	for i := range 3 {
		c := dial(t, addr)
		c.identify(fmt.Sprintf("idle-%d", i))
		c.send(map[string]any{"type": "JOIN", "channel": "#general"})
		c.expect("JOINED")
		idle = append(idle, c) // and never read again
	}
	sender := dial(t, addr)
	sender.ws.SetReadLimit(4 << 20)
	sender.identify("sender")
	sender.send(map[string]any{"type": "JOIN", "channel": "#general"})
	sender.expect("JOINED")
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	content := strings.Repeat("x", 2<<20-100)
	for range 60 {
		b, _ := json.Marshal(map[string]any{"type": "MSG", "to": "#general", "content": content})
		if err := sender.ws.Write(t.Context(), websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
		// The sender takes its own message back before the next, so only
		// the idle readers fall behind.
		for {
			_, got, err := sender.ws.Read(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > 1<<20 {
				break
			}
		}
	}
	close(stop)
	<-sampled
	t.Logf("peak heap in use: %d MiB", peak.Load()>>20)
	if peak.Load() > 128<<20 {
		t.Errorf("the heap reached %d MiB", peak.Load()>>20)
	}
	// The idle readers were dropped: once their socket buffers drain,
	// reading ends with the close.
	for _, c := range idle {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		for {
			if _, _, err := c.ws.Read(ctx); err != nil {
				if ctx.Err() != nil {
					t.Error("an idle reader is still connected")
				}
				break
			}
		}
		cancel()
	}
}

// TestRateLimited: more messages than the rate allows are answered
// RATE_LIMITED, and the connection stays.
func TestRateLimited(t *testing.T) {
	addr := startServer(t, Options{Channels: []string{"#general"}, Rate: 1, Burst: 3})
	c := dial(t, addr)
	c.identify("chatty")
	c.send(map[string]any{"type": "JOIN", "channel": "#general"})
	c.expect("JOINED")
	for range 3 {
		c.send(map[string]any{"type": "MSG", "to": "#general", "content": "hi"})
		c.expect("MSG")
	}
	c.send(map[string]any{"type": "MSG", "to": "#general", "content": "hi"})
	if e := c.expect("ERROR"); e["code"] != CodeRateLimited {
		t.Fatalf("got %v", e)
	}
	c.send(map[string]any{"type": "PING"})
	c.expect("PONG")
}

// TestIdentifyTimeout: a connection that never identifies is dropped.
func TestIdentifyTimeout(t *testing.T) {
	addr := startServer(t, Options{Channels: []string{"#general"}, IdentifyTimeout: 200 * time.Millisecond})
	c := dial(t, addr)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, _, err := c.ws.Read(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("still connected: %v", err)
	}
}

// TestAllowlist: with an allowlist only the issued identities get in, each
// under its own name; an ephemeral client, an unknown key and a known key
// claiming another's name are refused.
func TestAllowlist(t *testing.T) {
	agent, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	user, _ := NewKey()
	stranger, _ := NewKey()
	log, hook := logtest.NewNullLogger()
	addr := startServer(t, Options{Channels: []string{"#general"}, Log: log, Allow: map[string]ed25519.PublicKey{
		"agent-1": agent.Public().(ed25519.PublicKey), "user": user.Public().(ed25519.PublicKey)}})
	for _, tc := range []struct {
		name    string
		as      string
		key     ed25519.PrivateKey
		refused string
	}{
		{"the agent", "agent-1", agent, ""},
		{"the user", "user", user, ""},
		{"an ephemeral client", "agent-1", nil, CodeAuthRequired},
		{"an unknown key", "agent-1", stranger, CodeAuthRequired},
		{"an unknown key, its own name", "mallory", stranger, CodeAuthRequired},
		{"the user's key as agent-1", "agent-1", user, CodeAuthRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			id, err := Identify(t.Context(), c.ws, tc.as, tc.key)
			var refused *RefusedError
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused == "":
				if id != "@"+PubkeyToAgentID(PublicPEM(tc.key)) {
					t.Errorf("id %s", id)
				}
			case !errors.As(err, &refused) || refused.Code != tc.refused:
				t.Fatalf("err = %v, want %s", err, tc.refused)
			}
			// Every refusal leaves a trace in the server's log, naming
			// who tried.
			if tc.refused != "" {
				e := hook.LastEntry()
				if e == nil || e.Level != logrus.WarnLevel || !strings.HasPrefix(e.Message, "refused") || e.Data["name"] != tc.as {
					t.Errorf("the server's log after the refusal: %+v", e)
				}
			}
			hook.Reset()
		})
	}
}

func TestKeyFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.pem")
	k, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateKey(path)
	if err != nil || !again.Equal(k) {
		t.Fatalf("the key changed: %v", err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	pub, err := ParsePublicText(PublicText(k))
	if err != nil || !pub.Equal(k.Public()) {
		t.Fatalf("public text: %v", err)
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString([]byte("short"))} {
		if _, err := ParsePublicText(bad); err == nil {
			t.Errorf("ParsePublicText(%q) took it", bad)
		}
	}
}

// TestObserversSeeDirectMessages: a direct message to an agent reaches the
// verified observers (the user, the dashboard) too, but not an observer's
// name claimed by anyone else, nor other clients.
func TestObserversSeeDirectMessages(t *testing.T) {
	dash, _ := NewKey()
	addr := startServer(t, Options{Channels: []string{"#general"}, Observers: []string{"dashboard"}})
	observer := dial(t, addr)
	if _, err := Identify(t.Context(), observer.ws, "dashboard", dash); err != nil {
		t.Fatal(err)
	}
	impostor := dial(t, addr)
	impostor.identify("dashboard") // ephemeral: not verified
	bystander := dial(t, addr)
	bystander.identify("carol")
	agent := dial(t, addr)
	agentID := agent.identify("agent-1")
	sender := dial(t, addr)
	sender.identify("mallory")
	sender.send(map[string]any{"type": "MSG", "to": agentID, "content": "psst"})
	got := agent.expect("MSG")
	if got["content"] != "psst" || got["to_name"] != "agent-1" {
		t.Fatalf("the agent got %v", got)
	}
	if m := observer.expect("MSG"); m["content"] != "psst" || m["from_name"] != "mallory" || m["to_name"] != "agent-1" {
		t.Fatalf("the observer got %v", m)
	}
	for _, c := range []*client{impostor, bystander} {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		if _, b, err := c.ws.Read(ctx); err == nil {
			t.Errorf("a non-observer got %s", b)
		}
		cancel()
	}
}

// TestAdminAdmitsAndRevokes: the admin (the engine, as the user) admits a
// new run of an agent while the server runs; a new key for the name drops
// the old key's connection and refuses it afterwards; REVOKE shuts the name
// out and drops it at once; nobody else may do either.
func TestAdminAdmitsAndRevokes(t *testing.T) {
	user, _ := NewKey()
	agent, _ := NewKey()
	addr := startServer(t, Options{Channels: []string{"#general"}, Admins: []string{"user"},
		Allow: map[string]ed25519.PublicKey{"user": user.Public().(ed25519.PublicKey), "agent-1": agent.Public().(ed25519.PublicKey)}})
	url := "ws://" + addr
	as := func(name string, key ed25519.PrivateKey) (*Client, error) {
		return Dial(t.Context(), url, DialOptions{Name: name, Key: key})
	}
	admin, err := as("user", user)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	refusedWith := func(err error, code string) bool {
		var r *RefusedError
		return errors.As(err, &r) && r.Code == code
	}
	closed := func(c *Client) bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		for {
			if _, err := c.Read(ctx); err != nil {
				return ctx.Err() == nil // closed by the server, not timed out
			}
		}
	}

	// A second agent, admitted live.
	agent2, _ := NewKey()
	if _, err := as("agent-2", agent2); !refusedWith(err, CodeAuthRequired) {
		t.Fatalf("agent-2 before ADMIT: %v", err)
	}
	if err := Admit(t.Context(), admin, "agent-2", PublicText(agent2)); err != nil {
		t.Fatal(err)
	}
	a2, err := as("agent-2", agent2)
	if err != nil {
		t.Fatalf("agent-2 after ADMIT: %v", err)
	}
	defer a2.Close()

	// agent-1's next run has a new key: its old connection goes, its old
	// key is refused.
	old, err := as("agent-1", agent)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	next, _ := NewKey()
	if err := Admit(t.Context(), admin, "agent-1", PublicText(next)); err != nil {
		t.Fatal(err)
	}
	if !closed(old) {
		t.Error("the old key's connection stayed")
	}
	if _, err := as("agent-1", agent); !refusedWith(err, CodeAuthRequired) {
		t.Errorf("the old key after a new one: %v", err)
	}
	if c, err := as("agent-1", next); err != nil {
		t.Errorf("the new key: %v", err)
	} else {
		_ = c.Close()
	}

	// Revoked: dropped at once, refused after.
	if err := Revoke(t.Context(), admin, "agent-2"); err != nil {
		t.Fatal(err)
	}
	if !closed(a2) {
		t.Error("the revoked agent's connection stayed")
	}
	if _, err := as("agent-2", agent2); !refusedWith(err, CodeAuthRequired) {
		t.Errorf("agent-2 after REVOKE: %v", err)
	}

	// Only a verified admin may, and not on its own name.
	a1, err := as("agent-1", next)
	if err != nil {
		t.Fatal(err)
	}
	defer a1.Close()
	stranger, _ := NewKey()
	for _, tc := range []struct {
		name string
		err  error
		code string
	}{
		{"an agent admits itself another name", Admit(t.Context(), a1, "mallory", PublicText(stranger)), CodeNotAllowed},
		{"an agent revokes another", Revoke(t.Context(), a1, "user"), CodeNotAllowed},
		{"the admin replaces its own key", Admit(t.Context(), admin, "user", PublicText(stranger)), CodeNotAllowed},
		{"a bad key", Admit(t.Context(), admin, "agent-3", "not a key"), CodeInvalidMsg},
		{"a bad name", Admit(t.Context(), admin, "no spaces", PublicText(stranger)), CodeInvalidName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !refusedWith(tc.err, tc.code) {
				t.Errorf("%v, want %s", tc.err, tc.code)
			}
		})
	}
	if _, err := as("mallory", stranger); !refusedWith(err, CodeAuthRequired) {
		t.Errorf("mallory: %v", err)
	}

	// An open server has no list to change.
	open := startServer(t, Options{Admins: []string{"user"}})
	c, err := Dial(t.Context(), "ws://"+open, DialOptions{Name: "user", Key: user})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := Revoke(t.Context(), c, "agent-1"); !refusedWith(err, CodeInvalidMsg) {
		t.Errorf("REVOKE on an open server: %v", err)
	}
}

// Admit (a test's admin client) lets name in with the public key pub and
// waits for the answer.
func Admit(ctx context.Context, c *Client, name, pub string) error {
	return adminRequest(ctx, c, map[string]string{"type": TypeAdmit, "name": name, "pubkey": pub}, TypeAdmitted)
}

// Revoke (a test's admin client) shuts name out and waits for the answer.
func Revoke(ctx context.Context, c *Client, name string) error {
	return adminRequest(ctx, c, map[string]string{"type": TypeRevoke, "name": name}, TypeRevoked)
}

// adminRequest sends req and waits for its answer (want, for req's name)
// or an ERROR about that name.
func adminRequest(ctx context.Context, c *Client, req map[string]string, want string) error {
	if err := c.Send(ctx, req); err != nil {
		return err
	}
	for {
		f, err := c.Read(ctx)
		if err != nil {
			return fmt.Errorf("%s %s: %w", req["type"], req["name"], err)
		}
		switch {
		case f.Type == TypeError && f.Name == req["name"]:
			return &RefusedError{Code: f.Code, Message: f.Message}
		case f.Type == want && f.Name == req["name"]:
			return nil
		}
	}
}

// TestStatusToObservers: what an agent says it does (STATUS) reaches the
// verified observers, stamped with its name, and no one else.
func TestStatusToObservers(t *testing.T) {
	dash, _ := NewKey()
	addr := startServer(t, Options{Channels: []string{"#general"}, Observers: []string{"dashboard"}})
	url := "ws://" + addr
	observer, err := Dial(t.Context(), url, DialOptions{Name: "dashboard", Key: dash})
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close()
	bystander, err := Dial(t.Context(), url, DialOptions{Name: "mallory"})
	if err != nil {
		t.Fatal(err)
	}
	defer bystander.Close()
	agent, err := Dial(t.Context(), url, DialOptions{Name: "agent-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	if err := agent.Status(t.Context(), "working", "add a test", 2); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	f, err := observer.Read(ctx)
	if err != nil || f.Type != TypeStatus || f.FromName != "agent-1" || f.State != "working" || f.Task != "add a test" || f.Queued != 2 {
		t.Fatalf("the observer got %+v, %v", f, err)
	}
	if err := agent.Status(t.Context(), strings.Repeat("x", 33), "", 0); err != nil {
		t.Fatal(err)
	}
	if f, err := agent.Read(ctx); err != nil || f.Type != TypeError {
		t.Errorf("a state too long: %+v %v", f, err)
	}
	short, cancelShort := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancelShort()
	if f, err := bystander.Read(short); err == nil {
		t.Errorf("a bystander got %+v", f)
	}
}

// TestSendAfterCancel: a frame sent with a context that has already ended
// is not sent and does not close the connection (a stopping agent still
// says that its task was lost, on a fresh context, after its status calls
// with the ended one).
func TestSendAfterCancel(t *testing.T) {
	url := "ws://" + startServer(t, Options{Channels: []string{"#general"}})
	agent, err := Dial(t.Context(), url, DialOptions{Name: "agent-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	user, err := Dial(t.Context(), url, DialOptions{Name: "user"})
	if err != nil {
		t.Fatal(err)
	}
	defer user.Close()
	for _, c := range []*Client{agent, user} {
		if err := c.Join(t.Context(), "#general"); err != nil {
			t.Fatal(err)
		}
		// Joined before anything is said (two connections' frames may be
		// handled in any order).
		jctx, jcancel := context.WithTimeout(t.Context(), 5*time.Second)
		for {
			f, err := c.Read(jctx)
			if err != nil {
				t.Fatalf("join: %v", err)
			}
			if f.Type == TypeJoined {
				break
			}
		}
		jcancel()
	}
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	for range 200 { // the websocket's lock chose at random between the two
		if err := agent.Status(ended, "idle", "", 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("a status on an ended context: %v", err)
		}
	}
	if err := agent.Say(t.Context(), "#general", "still here"); err != nil {
		t.Fatalf("the connection did not survive: %v", err)
	}
	ctx, stop := context.WithTimeout(t.Context(), 5*time.Second)
	defer stop()
	for {
		f, err := user.Read(ctx)
		if err != nil {
			t.Fatalf("the user never heard it: %v", err)
		}
		if f.Type == TypeMsg && f.Content == "still here" {
			return
		}
	}
}
