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
	"syscall"
	"time"

	"github.com/thesystem-dev/thesystem/engine/listeners"
	"github.com/thesystem-dev/thesystem/engine/secrets"
	"github.com/thesystem-dev/thesystem/engine/unixsock"
)

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

// Run serves the proxy until ctx is cancelled. It refuses to start when
// the port or the socket is taken, naming what to change; on stop it
// removes its token, socket and pid files.
func Run(ctx context.Context, ro RunOptions) error {
	keys, err := secrets.LoadAll(ctx, ro.Store)
	if err != nil {
		return fmt.Errorf("load keys: %w", err)
	}
	for _, dir := range []string{filepath.Dir(ro.TokenFile), filepath.Dir(ro.AuditFile)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
	}
	audit, err := os.OpenFile(ro.AuditFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	defer func() { _ = audit.Close() }()
	ro.Audit = audit

	tcp, sock, err := Listen(ctx, ro.Addr, ro.Socket, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = tcp.Close(); _ = sock.Close() }()
	ro.Port = tcp.Addr().(*net.TCPAddr).Port

	p, err := New(ro.Options)
	if err != nil {
		return err
	}
	if err := p.SetKeys(keys); err != nil {
		return err
	}
	if err := p.IssueUserTokenFile(ro.TokenFile); err != nil {
		return err
	}
	defer func() { _ = os.Remove(ro.TokenFile) }()
	out := ro.Out
	if out == nil {
		out = io.Discard
	}
	reload := func() (string, error) {
		keys, err := secrets.LoadAll(ctx, ro.Store)
		if err == nil {
			err = p.SetKeys(keys)
		}
		if err != nil {
			fmt.Fprintf(out, "agentauth: reload failed, keeping the current keys: %v\n", err)
			return "", err
		}
		fmt.Fprint(out, "agentauth: keys reloaded; ")
		reportKeys(out, p.Backends())
		return strings.Join(p.Backends(), " "), nil
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
	reportKeys(out, p.Backends())

	served := make(chan error, 1)
	go func() { served <- p.ServeListeners(ctx, tcp, sock) }()
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
