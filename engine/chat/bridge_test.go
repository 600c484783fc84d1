package chat_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/chat"
	"github.com/thesystem-dev/thesystem/engine/chat/chattest"
	"github.com/thesystem-dev/thesystem/engine/webguard"
)

// serveBridge serves b on a 127.0.0.1 port until the test ends; its
// address.
func serveBridge(t *testing.T, b *chat.Bridge) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = b.Serve(ctx, ln) }()
	return ln.Addr().String()
}

func bridgeHealth(t *testing.T, addr string) chat.BridgeHealth {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/health", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var h chat.BridgeHealth
	_ = json.NewDecoder(resp.Body).Decode(&h)
	return h
}

// TestBridge: a client of the bridge is a client of the remote server
// (wss://, its certificate checked against the CA given): it proves its
// identity to the remote end to end and talks with the remote's other
// clients. A remote that is down is reported, tried again after a
// backoff, and reached again when it is back; a remote whose certificate
// the CA did not sign is refused.
func TestBridge(t *testing.T) {
	remote := chattest.Serve(t, chat.Options{Channels: []string{"#general"}})
	b := &chat.Bridge{Remote: remote.URL, TLS: &tls.Config{RootCAs: remote.CA, MinVersion: tls.VersionTLS12}, MaxBackoff: time.Second,
		Guard: webguard.Guard{}}
	addr := serveBridge(t, b)

	key, _ := chat.NewKey()
	local, err := chat.Dial(t.Context(), "ws://"+addr, chat.DialOptions{Name: "agent-1", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	far, err := chat.Dial(t.Context(), remote.URL, chat.DialOptions{Name: "alice"})
	if err == nil {
		t.Fatal("dialled the remote without its CA")
	}
	_ = far
	farWS := func() *chat.Client {
		t.Helper()
		// The remote's own client, with the CA.
		c, err := chat.Dial(t.Context(), remote.URL, chat.DialOptions{Name: "alice", TLS: &tls.Config{RootCAs: remote.CA, MinVersion: tls.VersionTLS12}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	alice := farWS()
	defer alice.Close()
	for _, c := range []*chat.Client{local, alice} {
		if err := c.Join(t.Context(), "#general"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		for {
			f, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("not joined: %v", err)
			}
			if f.Type == chat.TypeJoined {
				break
			}
		}
		cancel()
	}
	if !strings.HasPrefix(local.ID, "@") {
		t.Errorf("the bridged client is %q", local.ID)
	}
	if err := alice.Say(t.Context(), "#general", "@agent-1 hello from afar"); err != nil {
		t.Fatal(err)
	}
	read := func(c *chat.Client, want string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		for {
			f, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("never got %q: %v", want, err)
			}
			if f.Type == chat.TypeMsg && f.Content == want {
				return
			}
		}
	}
	read(local, "@agent-1 hello from afar")
	if err := local.Say(t.Context(), "#general", "hello back"); err != nil {
		t.Fatal(err)
	}
	read(alice, "hello back")
	if h := bridgeHealth(t, addr); h.Status != "healthy" || h.Relays != 1 {
		t.Errorf("health: %+v", h)
	}

	// The remote goes away: its clients are cut off, the bridge says why.
	remote.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for {
		if _, err := local.Read(ctx); err != nil {
			break
		}
	}
	if _, err := chat.Dial(t.Context(), "ws://"+addr, chat.DialOptions{Name: "agent-1", Key: key}); err == nil {
		t.Fatal("a client got through to a remote that is down")
	}
	if h := bridgeHealth(t, addr); h.Status != "unreachable" || !strings.Contains(h.Error, "remote "+remote.URL) || !strings.Contains(h.Error, "refused") {
		t.Errorf("health with the remote down: %+v", h)
	}
	remote.Start()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		c, err := chat.Dial(t.Context(), "ws://"+addr, chat.DialOptions{Name: "agent-1", Key: key})
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never reached again: %v", err)
		}
	}
	if h := bridgeHealth(t, addr); h.Status != "healthy" {
		t.Errorf("health once back: %+v", h)
	}

	// A CA that did not sign the remote's certificate: refused.
	other := chattest.Serve(t, chat.Options{})
	wrong := &chat.Bridge{Remote: remote.URL, TLS: &tls.Config{RootCAs: other.CA, MinVersion: tls.VersionTLS12}}
	waddr := serveBridge(t, wrong)
	if _, err := chat.Dial(t.Context(), "ws://"+waddr, chat.DialOptions{Name: "agent-1"}); err == nil {
		t.Error("relayed to a server whose certificate is not the CA's")
	}
	if h := bridgeHealth(t, waddr); !strings.Contains(h.Error, "certificate") {
		t.Errorf("health with a wrong CA: %+v", h)
	}
}

// TestBridgeBadCertificate: a certificate the CA does not vouch for is a
// tls.CertificateVerificationError, which the stack takes as final.
func TestBridgeBadCertificate(t *testing.T) {
	remote, other := chattest.Serve(t, chat.Options{}), chattest.Serve(t, chat.Options{})
	b := &chat.Bridge{Remote: remote.URL, TLS: &tls.Config{RootCAs: other.CA, MinVersion: tls.VersionTLS12}}
	var bad *tls.CertificateVerificationError
	if err := b.Probe(t.Context()); !errors.As(err, &bad) {
		t.Errorf("probe with the wrong CA: %v", err)
	}
}

// TestBridgeAwaySince: a remote that was away since a time is said so
// even once it is back (an agent that exited on its absence waits for it,
// not counted as crashing); not before that time.
func TestBridgeAwaySince(t *testing.T) {
	remote := chattest.Serve(t, chat.Options{})
	b := &chat.Bridge{Remote: remote.URL, TLS: &tls.Config{RootCAs: remote.CA, MinVersion: tls.VersionTLS12}, MaxBackoff: 100 * time.Millisecond}
	t0 := time.Now()
	if err := b.AwaySince(t.Context(), t0); err != nil {
		t.Fatalf("a remote that was there: %v", err)
	}
	remote.Stop()
	if err := b.AwaySince(t.Context(), t0); err == nil {
		t.Fatal("a remote that is gone: no error")
	}
	remote.Start()
	for deadline := time.Now().Add(10 * time.Second); b.Probe(t.Context()) != nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the remote never answered again")
		}
	}
	if err := b.AwaySince(t.Context(), t0); err == nil || !strings.Contains(err.Error(), "reached again since") {
		t.Errorf("back, but away since t0: %v", err)
	}
	if err := b.AwaySince(t.Context(), time.Now()); err != nil {
		t.Errorf("there all along since now: %v", err)
	}
}
