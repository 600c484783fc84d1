// Package dashboard is the read-only live page of the stack: channels,
// messages, agents and health, fed by the chat server (as a client of it,
// like the upstream agentdash, which reads AGENTCHAT_URL). Everything it
// shows is rendered as text, never as markup, under a strict
// Content-Security-Policy.
package dashboard

import (
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/thesystem-dev/thesystem/engine/chat"
	"github.com/thesystem-dev/thesystem/engine/listeners"
	"github.com/thesystem-dev/thesystem/engine/logx"
	"github.com/thesystem-dev/thesystem/engine/webguard"
)

//go:embed static
var static embed.FS

// CSP is the page's Content-Security-Policy: only its own script and
// style, no inline code, no frames, no forms, no other origin.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Options configure a Dashboard.
type Options struct {
	// ChatURL is the chat server, ws://host:port.
	ChatURL string
	// ChatSocket, when set, is dialed instead of ChatURL's host.
	ChatSocket string
	// Name is the dashboard's chat name.
	Name string
	// Identity is the file of its chat key ("" identifies without one).
	Identity string
	// Key, when set, is what a browser must show to see anything but
	// /api/health: once as ?key= on the page's URL (which sets a cookie
	// and drops it from the URL), then in that cookie. The dashboard
	// listens on the loopback, which every local account reaches too.
	Key string
	// History is how many messages per channel are kept.
	History int
	// Guard refuses other web pages and foreign Hosts (DNS rebinding) on
	// every route; the zero Guard takes loopback Hosts at any port and no
	// browser origin (the page's own requests carry none).
	Guard webguard.Guard
	Log   logrus.FieldLogger
}

// Message is one chat message as the page shows it.
type Message struct {
	Time     time.Time `json:"time"`
	From     string    `json:"from"`
	FromName string    `json:"from_name"`
	Content  string    `json:"content"`
}

// Channel is one channel's members and recent messages.
type Channel struct {
	Name     string            `json:"name"`
	Agents   map[string]string `json:"agents"` // id → name
	Messages []Message         `json:"messages"`
}

// State is what the page shows.
type State struct {
	Connected bool       `json:"connected"`
	Channels  []*Channel `json:"channels"`
	Seq       uint64     `json:"seq"`
}

// DirectChannel is where the page shows direct messages ("a → b"), which
// the chat server copies to the dashboard's verified identity.
const DirectChannel = "direct messages"

// Dashboard serves the page and keeps its state from the chat server.
type Dashboard struct {
	opt Options
	log logrus.FieldLogger

	mu        sync.Mutex
	connected bool
	channels  map[string]*Channel
	seq       uint64
	subs      map[chan struct{}]struct{}
}

// New makes a dashboard; Run connects it.
func New(opt Options) *Dashboard {
	if opt.Name == "" {
		opt.Name = "dashboard"
	}
	if opt.History <= 0 {
		opt.History = 200
	}
	log := logx.OrDiscard(opt.Log)
	return &Dashboard{opt: opt, log: log.WithField("component", "dashboard"), channels: map[string]*Channel{}, subs: map[chan struct{}]struct{}{}}
}

func (d *Dashboard) changed() {
	d.seq++
	for ch := range d.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Snapshot copies the state.
func (d *Dashboard) Snapshot() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := State{Connected: d.connected, Seq: d.seq}
	for _, c := range d.channels {
		cp := &Channel{Name: c.Name, Agents: map[string]string{}, Messages: append([]Message(nil), c.Messages...)}
		for k, v := range c.Agents {
			cp.Agents[k] = v
		}
		st.Channels = append(st.Channels, cp)
	}
	sort.Slice(st.Channels, func(i, j int) bool { return st.Channels[i].Name < st.Channels[j].Name })
	return st
}

// Run keeps a connection to the chat server until ctx ends, reconnecting
// with a growing delay when it drops.
func (d *Dashboard) Run(ctx context.Context) error {
	delay := 200 * time.Millisecond
	for {
		err := d.session(ctx)
		d.mu.Lock()
		d.connected = false
		d.changed()
		d.mu.Unlock()
		if ctx.Err() != nil {
			return nil
		}
		d.log.WithError(err).Warn("chat connection lost; reconnecting")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}

func (d *Dashboard) session(ctx context.Context) error {
	var key ed25519.PrivateKey
	if d.opt.Identity != "" {
		var err error
		if key, err = chat.ReadKey(d.opt.Identity); err != nil {
			return err
		}
	}
	c, err := chat.Dial(ctx, d.opt.ChatURL, chat.DialOptions{Socket: d.opt.ChatSocket, Name: d.opt.Name, Key: key})
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	d.mu.Lock()
	d.connected = true
	d.changed()
	d.mu.Unlock()
	if err := c.Send(ctx, map[string]string{"type": chat.TypeListChannels}); err != nil {
		return err
	}
	for {
		f, err := c.Read(ctx)
		if err != nil {
			return err
		}
		switch f.Type {
		case chat.TypeChannels:
			for _, ch := range f.Channels() {
				_ = c.Join(ctx, ch.Name)
			}
		default:
			d.apply(f)
		}
	}
}

// apply folds one chat event into the state.
func (d *Dashboard) apply(f chat.Frame) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ch := func(name string) *Channel {
		c := d.channels[name]
		if c == nil {
			c = &Channel{Name: name, Agents: map[string]string{}}
			d.channels[name] = c
		}
		return c
	}
	switch f.Type {
	case chat.TypeJoined:
		c := ch(f.Channel)
		for _, a := range f.Agents {
			if a.Name != d.opt.Name {
				c.Agents[a.ID] = a.Name
			}
		}
	case chat.TypeAgentJoined:
		ch(f.Channel).Agents[f.Agent] = f.Name
	case chat.TypeAgentLeft:
		delete(ch(f.Channel).Agents, f.Agent)
	case chat.TypeMsg:
		if len(f.To) == 0 {
			return
		}
		to, from := f.To, f.FromName
		if to[0] == '@' { // a direct message: the user sees those too
			to, from = DirectChannel, f.FromName+" → "+f.ToName
		}
		c := ch(to)
		c.Messages = append(c.Messages, Message{Time: time.UnixMilli(f.TS).UTC(), From: f.From, FromName: from, Content: f.Content})
		if len(c.Messages) > d.opt.History {
			c.Messages = c.Messages[len(c.Messages)-d.opt.History:]
		}
	default:
		return
	}
	d.changed()
}

func secure(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

// ServeHTTP serves the page, its state and its events; only GET.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	secure(w.Header())
	if err := d.opt.Guard.Check(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "read-only", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path != "/api/health" && !admit(w, r, d.opt.Key) {
		return
	}
	switch r.URL.Path {
	case "/api/health":
		d.mu.Lock()
		ok := d.connected
		d.mu.Unlock()
		writeJSON(w, map[string]any{"status": "ok", "connected": ok})
	case "/api/state":
		writeJSON(w, d.Snapshot())
	case "/api/events":
		d.events(w, r)
	case "/", "/index.html":
		d.index(w)
	case "/app.js":
		serveStatic(w, "static/app.js", "text/javascript; charset=utf-8")
	case "/style.css":
		serveStatic(w, "static/style.css", "text/css; charset=utf-8")
	default:
		http.NotFound(w, r)
	}
}

// KeyCookie holds the dashboard's key in the user's browser.
const KeyCookie = "thesystem_dashboard"

// admit lets a request through that shows the key: in the cookie, or as
// ?key= on the page (answered with the cookie and a redirect to the page
// without it). Anything else gets 401 and how to get in.
func admit(w http.ResponseWriter, r *http.Request, key string) bool {
	if key == "" {
		return true
	}
	same := func(s string) bool { return subtle.ConstantTimeCompare([]byte(s), []byte(key)) == 1 }
	if k := r.URL.Query().Get("key"); k != "" && same(k) {
		http.SetCookie(w, &http.Cookie{Name: KeyCookie, Value: key, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, r.URL.Path, http.StatusSeeOther)
		return false
	}
	if c, err := r.Cookie(KeyCookie); err == nil && same(c.Value) {
		return true
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = io.WriteString(w, "This dashboard needs its key: open it with `thesystem dashboard open` "+
		"(or `thesystem dashboard url`, or the menu's Open Dashboard).\n")
	return false
}

// page is index.html with the current state embedded as JSON data in a
// non-executable script element. encoding/json escapes <, > and & (as
// \u003c …), so no message can close the element or open another.
var page = template.Must(template.ParseFS(static, "static/index.html"))

func (d *Dashboard) index(w http.ResponseWriter) {
	b, err := json.Marshal(d.Snapshot())
	if err != nil {
		http.Error(w, "state", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = page.Execute(w, template.JS(b)) //nolint:gosec // JSON from json.Marshal, HTML-escaped by it
}

func serveStatic(w http.ResponseWriter, name, ctype string) {
	b, err := static.ReadFile(name)
	if err != nil {
		http.Error(w, "missing asset", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype)
	_, _ = w.Write(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// events streams the state as server-sent events, one per change.
func (d *Dashboard) events(w http.ResponseWriter, r *http.Request) {
	ch := make(chan struct{}, 1)
	d.mu.Lock()
	d.subs[ch] = struct{}{}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.subs, ch)
		d.mu.Unlock()
	}()
	streamEvents(w, r, ch, func() (any, error) { return d.Snapshot(), nil })
}

// streamEvents writes what snapshot says as server-sent events: now, at
// every receive from changed, and every 15 s (which also tells the page
// the link is alive), until the client goes or snapshot fails.
func streamEvents(w http.ResponseWriter, r *http.Request, changed <-chan struct{}, snapshot func() (any, error)) {
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	for {
		v, err := snapshot()
		if err != nil {
			return
		}
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		case <-time.After(15 * time.Second):
		}
	}
}

// Serve answers on ln until ctx ends.
func (d *Dashboard) Serve(ctx context.Context, ln net.Listener) error { return serve(ctx, d, ln) }

// serve answers h on ln until ctx ends.
func serve(ctx context.Context, h http.Handler, ln net.Listener) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	return listeners.ServeHTTP(ctx, srv, ln)
}
