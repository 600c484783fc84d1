package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/thesystem-dev/thesystem/engine/listeners"
	"github.com/thesystem-dev/thesystem/engine/secrets"
	"github.com/thesystem-dev/thesystem/engine/unixsock"
)

// Host is the proxy as a host process runs it, the daemon's and `thesystem
// proxy`'s alike: the keys from the store (read at Begin and on every
// Reload: the one way keys reach a running proxy), the user token file
// (new at each Begin, gone at End) and the audit log (appended, 0600,
// opened on first use).
type Host struct {
	*Proxy
	// Store opens the key store (once; the daemon opens it lazily).
	Store func(ctx context.Context) (secrets.Store, error)
	// TokenFile receives the user token (mode 0600).
	TokenFile string

	storeErr atomic.Pointer[error] // why the last read of the keys failed
}

// StoreProblem is why the key store could not be read the last time (the
// proxy then runs with the keys it had, none at first); nil once it was.
func (h *Host) StoreProblem() error {
	if p := h.storeErr.Load(); p != nil {
		return *p
	}
	return nil
}

// NewHost makes the proxy with opt, auditing to auditFile.
func NewHost(opt Options, store func(context.Context) (secrets.Store, error), tokenFile, auditFile string) (*Host, error) {
	opt.Audit = &AuditLog{Path: auditFile}
	p, err := New(opt)
	if err != nil {
		return nil, err
	}
	return &Host{Proxy: p, Store: store, TokenFile: tokenFile}, nil
}

// Begin loads the keys and issues a fresh user token into TokenFile. A
// key store that cannot be read does not stop it: the proxy runs without
// keys (its requests refused as for a provider without one) and
// StoreProblem says why, until a Reload reads it.
func (h *Host) Begin(ctx context.Context) error {
	_ = h.Reload(ctx)
	return h.IssueUserTokenFile(h.TokenFile)
}

// End removes the user token file.
func (h *Host) End() { _ = os.Remove(h.TokenFile) }

// Reload reads every key from the store again and swaps them in;
// requests in flight keep the key they were sent with. On an error the
// current keys stay.
func (h *Host) Reload(ctx context.Context) error {
	err := h.reload(ctx)
	if err != nil {
		h.storeErr.Store(&err)
	} else {
		h.storeErr.Store(nil)
	}
	return err
}

func (h *Host) reload(ctx context.Context) error {
	store, err := h.Store(ctx)
	if err != nil {
		return fmt.Errorf("no key store (%w)", err)
	}
	keys, err := secrets.LoadAll(ctx, store)
	if err != nil {
		return fmt.Errorf("read keys: %w", err)
	}
	return h.SetKeys(keys)
}

// AuditLog appends to the audit log file (0600, its dir 0700), opening
// it on first use. Past MaxBytes it is rotated between two lines (never
// within one): the file becomes Path.1, Path.1 becomes Path.2…, and the
// oldest past Keep is removed.
type AuditLog struct {
	Path string
	// MaxBytes is the size past which the file is rotated (0: 64 MiB);
	// Keep the rotated files kept (0: 4).
	MaxBytes int64
	Keep     int
	mu       sync.Mutex
	f        *os.File
	size     int64
}

// Files are the log's files, the oldest first (some may not exist).
func (a *AuditLog) Files() []string {
	var out []string
	for i := a.keep(); i >= 1; i-- {
		out = append(out, fmt.Sprintf("%s.%d", a.Path, i))
	}
	return append(out, a.Path)
}

func (a *AuditLog) keep() int {
	if a.Keep <= 0 {
		return 4
	}
	return a.Keep
}

func (a *AuditLog) Write(b []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	limit := a.MaxBytes
	if limit <= 0 {
		limit = 64 << 20
	}
	if a.f != nil && a.size > 0 && a.size+int64(len(b)) > limit {
		if err := a.rotate(); err != nil {
			return 0, fmt.Errorf("audit log: rotate: %w", err)
		}
	}
	if a.f == nil {
		if err := os.MkdirAll(filepath.Dir(a.Path), 0o700); err != nil {
			return 0, fmt.Errorf("audit log: %w", err)
		}
		f, err := os.OpenFile(a.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return 0, fmt.Errorf("audit log: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			_ = f.Close()
			return 0, fmt.Errorf("audit log: %w", err)
		}
		a.f, a.size = f, fi.Size()
	}
	n, err := a.f.Write(b)
	a.size += int64(n)
	return n, err
}

// rotate shifts the files by one and closes the current one (the next
// write opens a new one).
func (a *AuditLog) rotate() error {
	if err := a.f.Close(); err != nil {
		return err
	}
	a.f, a.size = nil, 0
	_ = os.Remove(fmt.Sprintf("%s.%d", a.Path, a.keep()))
	for i := a.keep() - 1; i >= 1; i-- {
		if err := os.Rename(fmt.Sprintf("%s.%d", a.Path, i), fmt.Sprintf("%s.%d", a.Path, i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return os.Rename(a.Path, a.Path+".1")
}

// Close closes the file (a later Write opens it again).
func (a *AuditLog) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}

// RunOptions are what Run needs to serve the proxy as a process: where
// the keys are, where to listen, and where its files go.
type RunOptions struct {
	Options
	// Store is read once at start, and again on every Reload.
	Store secrets.Store
	// Addr is the TCP address for the user's own tools, e.g. 127.0.0.1:9999.
	Addr string
	// Socket is the unix socket the sandboxes reach.
	Socket string
	// TokenFile receives the user token (mode 0600), new on each start and
	// removed on stop.
	TokenFile string
	// AuditFile is appended one JSON line per request (mode 0600).
	AuditFile string
	// ControlSocket, when set, takes requests to reload the keys (a line
	// "reload"; the answer is a line "ok …" or "error …"), so `keys set`
	// reaches this process without a pid file and a signal. Mode 0600.
	ControlSocket string
	// Reload asks for the keys to be read again from the store.
	Reload <-chan struct{}
	// Out receives progress lines for the user.
	Out io.Writer
}

// Run serves the proxy in the foreground (`thesystem proxy`) until ctx is
// cancelled: a Host on its own listeners, with a control socket for key
// reloads. It refuses to start when the port or the socket is taken,
// naming what to change; on stop it removes its token file.
func Run(ctx context.Context, ro RunOptions) error {
	if err := os.MkdirAll(filepath.Dir(ro.TokenFile), 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	tcp, sock, err := Listen(ctx, ro.Addr, ro.Socket, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = tcp.Close(); _ = sock.Close() }()
	ro.Port = tcp.Addr().(*net.TCPAddr).Port
	h, err := NewHost(ro.Options, func(context.Context) (secrets.Store, error) { return ro.Store, nil }, ro.TokenFile, ro.AuditFile)
	if err != nil {
		return err
	}
	audit := h.opt.Audit.(*AuditLog)
	defer func() { _ = audit.Close() }()
	if _, err := audit.Write(nil); err != nil { // not writable: say so now
		return err
	}
	if err := h.Begin(ctx); err != nil {
		return err
	}
	defer h.End()
	out := ro.Out
	if out == nil {
		out = io.Discard
	}
	if err := h.StoreProblem(); err != nil {
		fmt.Fprintf(out, "agentauth: running without keys: %v (`thesystem doctor` says more; `thesystem keys set` reloads)\n", err)
	}
	reload := func() (string, error) {
		if err := h.Reload(ctx); err != nil {
			fmt.Fprintf(out, "agentauth: reload failed, keeping the current keys: %v\n", err)
			return "", err
		}
		fmt.Fprint(out, "agentauth: keys reloaded; ")
		reportKeys(out, h.Backends())
		return strings.Join(h.Backends(), " "), nil
	}
	if ro.ControlSocket != "" {
		ctl, err := unixsock.Listen(ctx, ro.ControlSocket, 0o600)
		if err != nil {
			return fmt.Errorf("control socket: %w", err)
		}
		defer func() { _ = ctl.Close() }()
		go serveControl(ctl, reload)
	}
	fmt.Fprintf(out, "agentauth: listening on http://%s and unix:%s\n", tcp.Addr(), ro.Socket)
	fmt.Fprintf(out, "agentauth: user token in %s (Authorization: Bearer <token>, or as the provider API key)\n", ro.TokenFile)
	reportKeys(out, h.Backends())

	served := make(chan error, 1)
	go func() { served <- h.ServeListeners(ctx, tcp, sock) }()
	for {
		select {
		case err := <-served:
			return err
		case <-ro.Reload:
			_, _ = reload()
		}
	}
}

// serveControl answers the control socket until it is closed: one
// request line, "reload", per connection.
func serveControl(ln net.Listener, reload func() (string, error)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer func() { _ = c.Close() }()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n')
			if err != nil || strings.TrimSpace(line) != "reload" {
				_, _ = io.WriteString(c, "error unknown request\n")
				return
			}
			backends, err := reload()
			if err != nil {
				_, _ = fmt.Fprintf(c, "error %v\n", err)
				return
			}
			_, _ = fmt.Fprintf(c, "ok %s\n", backends)
		}()
	}
}

// Listen opens the proxy's TCP listener and unix socket (with mode), with
// errors that say what to change.
func Listen(ctx context.Context, addr, socket string, mode fs.FileMode) (tcp, sock net.Listener, err error) {
	var lc net.ListenConfig
	tcp, err = lc.Listen(ctx, "tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("%s is in use (another thesystem proxy, or the upstream agentauth?): stop it or set proxy.port in thesystem.yaml: %w", addr, err)
		}
		return nil, nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	sock, err = unixsock.Listen(ctx, socket, mode)
	if err != nil {
		_ = tcp.Close()
		return nil, nil, err
	}
	return tcp, sock, nil
}

// ServeListeners serves on every listener until ctx ends (nil) or one of
// them fails (its error; the others are stopped).
func (p *Proxy) ServeListeners(ctx context.Context, lns ...net.Listener) error {
	return listeners.Serve(ctx, p.Serve, lns...)
}

func reportKeys(out io.Writer, backends []string) {
	if len(backends) == 0 {
		fmt.Fprintln(out, "agentauth: no keys stored yet: run `thesystem keys set <provider>`")
		return
	}
	fmt.Fprintf(out, "agentauth: keys for %s\n", strings.Join(backends, ", "))
}
