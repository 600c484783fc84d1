package supervise

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"time"
)

// Probe checks a component: nil means healthy. A probe must return
// promptly when ctx ends.
type Probe interface {
	Check(ctx context.Context) error
}

// ProbeFunc adapts a function to Probe.
type ProbeFunc func(ctx context.Context) error

// Check calls f.
func (f ProbeFunc) Check(ctx context.Context) error { return f(ctx) }

// TCPProbe succeeds when a connection to Network/Addr ("tcp" by default,
// or "unix" with a socket path) can be opened.
type TCPProbe struct {
	Network string
	Addr    string
}

// Check dials.
func (p TCPProbe) Check(ctx context.Context) error {
	network := p.Network
	if network == "" {
		network = "tcp"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, network, p.Addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", p.Addr, err)
	}
	return c.Close()
}

// HTTPProbe succeeds when GET URL answers Status (200 when zero).
type HTTPProbe struct {
	URL    string
	Status int
	// Client defaults to one with Timeout; set it to reach a unix socket.
	Client *http.Client
	// Timeout bounds the default client's request; 0 means 2 s.
	Timeout time.Duration
}

// Check gets the URL.
func (p HTTPProbe) Check(ctx context.Context) error {
	want := p.Status
	if want == 0 {
		want = http.StatusOK
	}
	c := p.Client
	if c == nil {
		timeout := p.Timeout
		if timeout <= 0 {
			timeout = 2 * time.Second
		}
		c = &http.Client{Timeout: timeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", p.URL, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != want {
		return fmt.Errorf("GET %s: status %d, want %d", p.URL, resp.StatusCode, want)
	}
	return nil
}

// ExecProbe succeeds when the command exits 0.
type ExecProbe struct {
	Argv    []string
	Timeout time.Duration
}

// Check runs the command.
func (p ExecProbe) Check(ctx context.Context) error {
	timeout := p.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, p.Argv[0], p.Argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(p.Argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
