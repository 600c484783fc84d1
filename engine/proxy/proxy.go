// Package proxy is agentauth, the in-process key proxy: agents and the
// user's tools call /<provider>/… with a use-only token, and the proxy
// forwards to the provider with the real key, which never leaves this
// process. It is wire-compatible with the upstream agentauth (GET
// /agentauth/health, the same provider routes) and adds per-agent revocable
// tokens, budgets and an audit log with token usage read from JSON bodies
// and event streams alike.
package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/thesystem-dev/thesystem/engine/atomicfile"
	"github.com/thesystem-dev/thesystem/engine/logx"
	"github.com/thesystem-dev/thesystem/engine/provider"
	"github.com/thesystem-dev/thesystem/engine/secrets"
	"github.com/thesystem-dev/thesystem/engine/webguard"
)

// Options configure a Proxy. The zero value is usable.
type Options struct {
	// Port is what /agentauth/health reports (the TCP port clients use).
	Port int
	// Upstreams overrides providers' base URLs (tests point them at fakes
	// on 127.0.0.1).
	Upstreams map[string]string
	// Allow lists the TCP source networks served; nil means DefaultAllow.
	// Unix socket connections are always served.
	Allow []netip.Prefix
	// Budget limits every agent's spending per period.
	Budget Budget
	// MaxBody caps a request body; 0 means 32 MiB.
	MaxBody int64
	// Audit receives one JSON line per request.
	Audit io.Writer
	// Log receives operational messages; nil discards them.
	Log logrus.FieldLogger
	// Transport reaches the upstreams; nil means a tuned http.Transport
	// that ignores HTTP_PROXY (a key must not transit another proxy).
	Transport http.RoundTripper
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnBudgetSpent is told when an agent's request is refused because it
	// spent its budget (the menu bar notifies the user); it must not block.
	OnBudgetSpent func(agent, message string)
	// OnRecord hears every audit record once it is written (the usage
	// account); it must not block.
	OnRecord func(AuditRecord)
}

// DefaultAllow is loopback plus Lima's host network (the VM reaches the
// host's forwarded ports from 192.168.5.0/24).
func DefaultAllow() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("192.168.5.0/24"),
	}
}

const defaultMaxBody = 32 << 20

type upstream struct {
	provider.Provider
	base *url.URL
}

// Proxy is the key proxy. Its methods are safe for concurrent use.
type Proxy struct {
	opt       Options
	log       logrus.FieldLogger
	upstreams map[string]*upstream // provider name or alias → upstream (read-only after New)
	keys      atomic.Pointer[map[string]secrets.Key]
	tokens    *Tokens
	ledger    *ledger
	audit     auditLog
	rp        *httputil.ReverseProxy

	mu       sync.Mutex
	inflight map[string]map[uint64]context.CancelFunc // agent → request → cancel
	seq      uint64
}

// New builds a proxy with no keys and no tokens.
func New(opt Options) (*Proxy, error) {
	if opt.Allow == nil {
		opt.Allow = DefaultAllow()
	}
	if opt.MaxBody <= 0 {
		opt.MaxBody = defaultMaxBody
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	log := logx.OrDiscard(opt.Log)
	p := &Proxy{
		opt:       opt,
		log:       log.WithField("component", "agentauth"),
		upstreams: map[string]*upstream{},
		tokens:    NewTokens(),
		ledger:    newLedger(opt.Budget, opt.Now),
		audit:     auditLog{w: opt.Audit},
		inflight:  map[string]map[uint64]context.CancelFunc{},
	}
	for name := range opt.Upstreams {
		if _, ok := provider.Lookup(name); !ok {
			return nil, fmt.Errorf("upstream override for unknown provider %q", name)
		}
	}
	for _, pr := range provider.All() {
		raw := pr.BaseURL
		for name, override := range opt.Upstreams {
			if q, _ := provider.Lookup(name); q.Name == pr.Name {
				raw = override
			}
		}
		u, err := parseBase(raw)
		if err != nil {
			return nil, fmt.Errorf("upstream for %s: %w", pr.Name, err)
		}
		up := &upstream{Provider: pr, base: u}
		for _, name := range append([]string{pr.Name}, pr.Aliases...) {
			p.upstreams[name] = up
		}
	}
	empty := map[string]secrets.Key{}
	p.keys.Store(&empty)
	transport := opt.Transport
	if transport == nil {
		transport = newTransport()
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      transport,
		FlushInterval:  -1,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.upstreamError,
		BufferPool:     &bufferPool{},
	}
	return p, nil
}

func parseBase(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(raw, "/"))
	switch {
	case err != nil:
		return nil, fmt.Errorf("invalid URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return nil, fmt.Errorf("%q is not an http(s) URL with a host", raw)
	case u.User != nil, u.RawQuery != "", u.Fragment != "":
		return nil, fmt.Errorf("%q must not carry credentials, a query or a fragment", raw)
	}
	return u, nil
}

func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 10 * time.Minute,
		ExpectContinueTimeout: time.Second,
	}
}

// SetKeys replaces every key at once (provider names or aliases).
// Requests already forwarded keep the key they were sent with.
func (p *Proxy) SetKeys(keys map[string]secrets.Key) error {
	next := make(map[string]secrets.Key, len(keys))
	for name, k := range keys {
		pr, err := provider.Parse(name)
		if err != nil {
			return err
		}
		if !k.IsZero() {
			next[pr.Name] = k
		}
	}
	p.keys.Store(&next)
	return nil
}

// SetKey hot-swaps one provider's key; a zero key removes it. In-flight
// requests are not disturbed: each carries the key it was sent with.
func (p *Proxy) SetKey(name string, k secrets.Key) error {
	pr, err := provider.Parse(name)
	if err != nil {
		return err
	}
	for {
		old := p.keys.Load()
		next := maps.Clone(*old)
		if k.IsZero() {
			delete(next, pr.Name)
		} else {
			next[pr.Name] = k
		}
		if p.keys.CompareAndSwap(old, &next) {
			return nil
		}
	}
}

// Backends lists the providers that have a key, sorted.
func (p *Proxy) Backends() []string {
	return slices.Sorted(maps.Keys(*p.keys.Load()))
}

// IssueUserTokenFile issues a new user token, revoking the previous one,
// and writes it to path (0600, atomically) for the user's own tools.
func (p *Proxy) IssueUserTokenFile(path string) error {
	tok, err := p.tokens.IssueUser()
	if err != nil {
		return err
	}
	return atomicfile.WritePrivate(path, []byte(tok+"\n"))
}

// Tokens is the token registry, for issuing tokens.
func (p *Proxy) Tokens() *Tokens { return p.tokens }

// Usage returns every identity's consumption in its current period.
func (p *Proxy) Usage() map[string]Spent { return p.ledger.snapshot() }

// SeedSpent sets what agent spent in its current period, which began at
// s.Since: a restarted engine carries its budgets on from the audit log.
func (p *Proxy) SeedSpent(agent string, s Spent) { p.ledger.seed(agent, s) }

// Budget is the budget each agent has per period (zero: none).
func (p *Proxy) Budget() Budget { return p.ledger.budget }

// Revoke revokes agent's token and cuts off its requests in flight.
func (p *Proxy) Revoke(agent string) bool {
	ok := p.tokens.revoke(agent)
	p.cancelInflight(agent)
	return ok
}

// RotateAgentTokens revokes every agent token, cuts off the requests made
// with them, and returns the new tokens.
func (p *Proxy) RotateAgentTokens() (map[string]string, error) {
	agents := p.tokens.Agents()
	for _, a := range agents {
		p.tokens.revoke(a)
		p.cancelInflight(a)
	}
	out := make(map[string]string, len(agents))
	for _, a := range agents {
		tok, err := p.tokens.Issue(a)
		if err != nil {
			return nil, err
		}
		out[a] = tok
	}
	return out, nil
}

func (p *Proxy) track(agent string, cancel context.CancelFunc) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	if p.inflight[agent] == nil {
		p.inflight[agent] = map[uint64]context.CancelFunc{}
	}
	p.inflight[agent][p.seq] = cancel
	return p.seq
}

func (p *Proxy) untrack(agent string, id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inflight[agent], id)
	if len(p.inflight[agent]) == 0 {
		delete(p.inflight, agent)
	}
}

func (p *Proxy) cancelInflight(agent string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, cancel := range p.inflight[agent] {
		cancel()
	}
}

// reqState travels with a request from ServeHTTP to the ReverseProxy hooks.
type reqState struct {
	up    *upstream
	rest  string
	query url.Values
	key   secrets.Key
	meter *meter
}

type stateKey struct{}

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	st := pr.In.Context().Value(stateKey{}).(*reqState)
	out := pr.Out
	u := *st.up.base
	u.Path = st.up.base.Path + mustUnescape(st.rest)
	u.RawPath = st.up.base.EscapedPath() + st.rest
	st.query.Del("key")
	u.RawQuery = st.query.Encode()
	out.URL = &u
	out.Host = ""
	for _, h := range credentialHeaders() {
		out.Header.Del(h)
	}
	out.Header.Del("Origin")
	out.Header.Del("Referer")
	// Let our transport negotiate compression and decode it, so usage can
	// always be read from the response.
	out.Header.Del("Accept-Encoding")
	k := st.key.Reveal()
	switch st.up.Auth {
	case provider.AuthXAPIKey:
		out.Header.Set("X-Api-Key", k)
	case provider.AuthXGoogAPIKey:
		out.Header.Set("X-Goog-Api-Key", k)
	default:
		out.Header.Set("Authorization", "Bearer "+k)
	}
}

// mustUnescape unescapes a rest that splitRoute accepted, which only
// admits valid escapes.
func mustUnescape(s string) string {
	u, _ := url.PathUnescape(s)
	return u
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	st := resp.Request.Context().Value(stateKey{}).(*reqState)
	st.meter = newMeter(resp.Body, resp.Header.Get("Content-Type"))
	resp.Body = st.meter
	return nil
}

func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		// The client went away or its token was revoked: nobody to answer.
		w.WriteHeader(499)
		return
	}
	st := r.Context().Value(stateKey{}).(*reqState)
	p.log.WithField("provider", st.up.Name).WithError(err).Warn("upstream request failed")
	writeError(w, http.StatusBadGateway, "upstream_error", fmt.Sprintf("%s upstream unreachable: %v", st.up.Name, err))
}

// writeError answers in the shape provider SDKs parse.
func writeError(w http.ResponseWriter, status int, kind, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]any{
		"type":  "error",
		"error": map[string]string{"type": kind, "message": msg},
	})
}

type connKindKey struct{}

// allowed reports whether a TCP peer may use the proxy.
// overSocket: r came over the proxy's unix socket.
func overSocket(r *http.Request) bool {
	kind, _ := r.Context().Value(connKindKey{}).(string)
	return kind == "unix"
}

func (p *Proxy) allowed(r *http.Request) bool {
	if overSocket(r) {
		return true
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, pfx := range p.opt.Allow {
		if pfx.Contains(addr) {
			return true
		}
	}
	return false
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := p.opt.Now()
	sw := &statusWriter{ResponseWriter: w}
	rec := &AuditRecord{Time: start.UTC(), Method: r.Method, Path: r.URL.Path}
	audit := true
	defer func() {
		if !audit {
			return
		}
		rec.Status = sw.statusCode()
		rec.DurationMS = float64(p.opt.Now().Sub(start).Microseconds()) / 1000
		p.audit.write(rec)
		if p.opt.OnRecord != nil {
			p.opt.OnRecord(*rec)
		}
	}()
	refuse := func(status int, kind, msg string) {
		rec.Refused = kind
		// Closed without reading the body: a client that trickles one
		// byte at a time must not hold the connection (the server would
		// otherwise read up to 256 KiB of it to reuse the connection).
		sw.Header().Set("Connection", "close")
		writeError(sw, status, kind, msg)
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	}

	if r.Header.Get("Origin") != "" || r.Header.Get("Referer") != "" {
		refuse(http.StatusForbidden, "forbidden", "requests from web pages are refused: a page must not spend your keys")
		return
	}
	// On TCP, a name of a page's that points at 127.0.0.1 (DNS rebinding)
	// comes as the Host: only the loopback's own names are taken. (The
	// socket's clients are processes with the socket's dir mounted.)
	if err := (webguard.Guard{}).Check(r); err != nil && !overSocket(r) {
		refuse(http.StatusForbidden, "forbidden", err.Error())
		return
	}
	if !p.allowed(r) {
		refuse(http.StatusForbidden, "forbidden", "this address may not use the proxy; connect from loopback or through the proxy socket")
		return
	}
	if r.URL.Path == "/agentauth/health" {
		audit = false
		p.health(sw)
		return
	}
	prov, rest, err := splitRoute(r.URL.EscapedPath())
	if err != nil {
		refuse(http.StatusBadRequest, "invalid_request_error", "malformed path: expected /<provider>/<api path> without dot, empty or encoded segments")
		return
	}
	rec.Provider = prov
	tok, err := extractToken(r.Header, r.URL.Query())
	if err != nil {
		refuse(http.StatusUnauthorized, "authentication_error", err.Error())
		return
	}
	id, ok := p.tokens.Lookup(tok)
	if !ok {
		refuse(http.StatusUnauthorized, "authentication_error", "invalid or revoked token")
		return
	}
	rec.Agent = id.Name
	if prov == "agentauth" && rest == "/providers" {
		p.providers(sw)
		return
	}
	if prov == "agentauth" && rest == "/usage" {
		p.usage(sw, id)
		return
	}
	up, ok := p.upstream(prov)
	if !ok {
		refuse(http.StatusNotFound, "not_found_error", fmt.Sprintf("unknown provider %q (one of: %s)", prov, strings.Join(provider.Names(), ", ")))
		return
	}
	rec.Provider = up.Name
	key := (*p.keys.Load())[up.Name]
	if key.IsZero() {
		refuse(http.StatusServiceUnavailable, "api_error", fmt.Sprintf("no %s key is stored: run `thesystem keys set %s`", up.Name, up.Name))
		return
	}
	if err := p.ledger.admit(id); err != nil {
		refuse(http.StatusTooManyRequests, "budget_exceeded", err.Error())
		if p.opt.OnBudgetSpent != nil {
			p.opt.OnBudgetSpent(id.Name, err.Error())
		}
		return
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		body, err = io.ReadAll(http.MaxBytesReader(sw, r.Body, p.opt.MaxBody))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			refuse(http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("request body over %d bytes", p.opt.MaxBody))
			return
		case err != nil:
			refuse(http.StatusBadRequest, "invalid_request_error", "could not read the request body")
			return
		}
	}
	rec.BytesIn = int64(len(body))
	rec.Model = modelOf(body, rest)

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	reqID := p.track(id.Name, cancel)
	defer p.untrack(id.Name, reqID)
	// A revocation between the lookup and the tracking above must still
	// cut this request off.
	if again, ok := p.tokens.Lookup(tok); !ok || again != id {
		refuse(http.StatusUnauthorized, "authentication_error", "invalid or revoked token")
		return
	}

	st := &reqState{up: up, rest: rest, query: r.URL.Query(), key: key}
	out := r.Clone(context.WithValue(ctx, stateKey{}, st))
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	if len(body) == 0 {
		out.Body = http.NoBody
	}
	defer func() {
		if st.meter != nil {
			var u Usage
			rec.BytesOut, u = st.meter.result()
			rec.Usage = u
			p.ledger.charge(id, u)
		}
	}()
	p.rp.ServeHTTP(sw, out)
}

// upstream resolves a route's provider name or alias without allocating:
// it is on every request's path.
func (p *Proxy) upstream(name string) (*upstream, bool) {
	up, ok := p.upstreams[name]
	return up, ok
}

// health is upstream agentauth's discovery endpoint; it needs no token
// and tells which providers have a key, never the key.
func (p *Proxy) health(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"status":   "ok",
		"backends": p.Backends(),
		"port":     p.opt.Port,
	})
}

// ProviderInfo is an entry of /agentauth/providers.
type ProviderInfo struct {
	Name       string             `json:"name"`
	Aliases    []string           `json:"aliases,omitempty"`
	Path       string             `json:"path"`
	Upstream   string             `json:"upstream"`
	Auth       provider.AuthStyle `json:"auth"`
	Configured bool               `json:"configured"`
}

func (p *Proxy) providers(w http.ResponseWriter) {
	keys := *p.keys.Load()
	var out []ProviderInfo
	for _, pr := range provider.All() {
		up := p.upstreams[pr.Name]
		_, has := keys[pr.Name]
		out = append(out, ProviderInfo{Name: pr.Name, Aliases: pr.Aliases, Path: "/" + pr.Name,
			Upstream: up.base.String(), Auth: pr.Auth, Configured: has})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"providers": out})
}

// OwnUsage is what /agentauth/usage tells a token's holder: its own
// consumption in the current period as the proxy counted it, and its
// budget. An agent reads it before and after a task to report what the
// task cost, never trusting the runtime's own count.
type OwnUsage struct {
	Agent string `json:"agent"`
	Spent
	Budget Budget `json:"budget"`
}

func (p *Proxy) usage(w http.ResponseWriter, id Identity) {
	p.ledger.mu.Lock()
	own := OwnUsage{Agent: id.Name, Spent: *p.ledger.current(id.Name), Budget: p.ledger.budget}
	p.ledger.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(own)
}

// bufferPool recycles the ReverseProxy's copy buffers, which it would
// otherwise allocate (32 KiB) for every response.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// statusWriter records the status; Unwrap lets http.ResponseController
// reach the real writer's Flush for streaming.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) statusCode() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}
