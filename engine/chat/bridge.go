package chat

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/thesystem-dev/thesystem/engine/listeners"
	"github.com/thesystem-dev/thesystem/engine/webguard"
)

// Bridge relays the local clients of a team (its agents, the dashboard,
// the user) to a remote chat server (mode: client): each websocket
// connection it accepts gets one of its own to the remote, and the frames
// pass both ways unchanged, so identities are proved end to end (the
// remote's CHALLENGE is signed by the agent's own key). Only the host
// dials out: the containers reach the bridge through their socket.
//
// A remote that cannot be reached is tried again with a backoff (1 s,
// doubling to MaxBackoff): a client that comes meanwhile is refused at
// once with the last error, and /health says it.
type Bridge struct {
	// Remote is the server's ws:// or wss:// URL.
	Remote string
	// TLS verifies a wss:// server (nil: the system's roots).
	TLS *tls.Config
	// Guard refuses web pages and foreign Hosts, as the server's does.
	Guard webguard.Guard
	// MaxBackoff bounds the wait between tries of a remote that failed
	// (0: 30 s).
	MaxBackoff time.Duration
	// Logf receives what happens to the remote link.
	Logf func(format string, args ...any)

	mu      sync.Mutex
	live    int       // connections relayed now
	lastErr error     // the last dial's failure; nil after a success
	retry   time.Time // no dial before this while failing
	backoff time.Duration
	// failed and failedAt are the latest failed dial, kept after a
	// success: AwaySince.
	failed   error
	failedAt time.Time
}

// BridgeHealth is /health's answer.
type BridgeHealth struct {
	Status string `json:"status"` // healthy, or unreachable
	Remote string `json:"remote"`
	Error  string `json:"error,omitempty"`
	Relays int    `json:"relays"`
}

func (b *Bridge) logf(format string, args ...any) {
	if b.Logf != nil {
		b.Logf(format, args...)
	}
}

// Health is the remote link's state: unreachable while the last try
// failed.
func (b *Bridge) Health() BridgeHealth {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := BridgeHealth{Status: "healthy", Remote: b.Remote, Relays: b.live}
	if b.lastErr != nil {
		h.Status, h.Error = "unreachable", b.lastErr.Error()
	}
	return h
}

// Probe dials the remote once (when no try is due to wait) and says
// whether it answers: what a health check between connections asks.
func (b *Bridge) Probe(ctx context.Context) error {
	ws, err := b.dial(ctx)
	if err != nil {
		return err
	}
	_ = ws.Close(websocket.StatusNormalClosure, "probe")
	return nil
}

// AwaySince says why the remote could not be reached at some time since
// t: now (a Probe), or at the latest failed dial after t. A client that
// failed on the remote's absence (an agent that exited on it) is told so
// even when the remote came back before its exit was seen.
func (b *Bridge) AwaySince(ctx context.Context, t time.Time) error {
	if err := b.Probe(ctx); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failed != nil && b.failedAt.After(t) {
		return fmt.Errorf("%w (at %s; reached again since)", b.failed, b.failedAt.Format("15:04:05"))
	}
	return nil
}

// dial connects to the remote, unless an earlier failure's backoff has
// not run out (then it fails at once with that failure).
func (b *Bridge) dial(ctx context.Context) (*websocket.Conn, error) {
	b.mu.Lock()
	if b.lastErr != nil && time.Now().Before(b.retry) {
		err := b.lastErr
		b.failedAt = time.Now() // refused for it: away now still
		b.mu.Unlock()
		return nil, err
	}
	b.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(dctx, b.Remote, &websocket.DialOptions{HTTPClient: &http.Client{
		Transport: &http.Transport{TLSClientConfig: b.TLS, Proxy: http.ProxyFromEnvironment}}})
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		limit := b.MaxBackoff
		if limit <= 0 {
			limit = 30 * time.Second
		}
		b.backoff = min(limit, max(time.Second, 2*b.backoff))
		if b.lastErr == nil || b.lastErr.Error() != err.Error() {
			b.logf("remote %s: %v (trying again in %s)", b.Remote, err, b.backoff)
		}
		b.lastErr, b.retry = fmt.Errorf("remote %s: %w", b.Remote, err), time.Now().Add(b.backoff)
		b.failed, b.failedAt = b.lastErr, time.Now()
		return nil, b.lastErr
	}
	if b.lastErr != nil {
		b.logf("remote %s: reached again", b.Remote)
	}
	b.lastErr, b.backoff = nil, 0
	ws.SetReadLimit(6*maxContent + 64<<10)
	return ws, nil
}

// Serve serves the bridge on ln until ctx ends (its relays with it).
func (b *Bridge) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	return listeners.ServeHTTP(ctx, srv, ln)
}

func (b *Bridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := b.Guard.Check(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if r.URL.Path == "/health" {
		h := b.Health()
		w.Header().Set("Content-Type", "application/json")
		if h.Status != "healthy" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(h)
		return
	}
	remote, err := b.dial(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer func() { _ = remote.CloseNow() }()
	// The guard has checked the Origin, more strictly than Accept would.
	local, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer func() { _ = local.CloseNow() }()
	local.SetReadLimit(maxContent + 64<<10)
	b.mu.Lock()
	b.live++
	b.mu.Unlock()
	defer func() { b.mu.Lock(); b.live--; b.mu.Unlock() }()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- pump(ctx, local, remote) }()
	go func() { errs <- pump(ctx, remote, local) }()
	err = <-errs
	cancel()
	// The other side hears why (the remote's close, or going away).
	status := websocket.CloseStatus(err)
	if status == -1 {
		status = websocket.StatusGoingAway
	}
	_ = local.Close(status, "")
	_ = remote.Close(status, "")
}

// pump copies frames from src to dst until either ends.
func pump(ctx context.Context, dst, src *websocket.Conn) error {
	for {
		typ, b, err := src.Read(ctx)
		if err != nil {
			return err
		}
		if err := dst.Write(ctx, typ, b); err != nil {
			return err
		}
	}
}
