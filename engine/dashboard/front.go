package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/webguard"
)

// Team is what the page shows of the team that the chat does not carry:
// the stack's health, the agents' state and spending, and the spend of the
// last hour minute by minute. It comes from the engine, read-only: no
// key, no token, no control.
type Team struct {
	Status api.Status `json:"status"`
	// Usage is today's, since midnight.
	Usage api.Usage `json:"usage"`
	// Series is the tokens spent per minute over the last hour, oldest
	// first, from SeriesStart.
	Series      []int64   `json:"series"`
	SeriesStart time.Time `json:"series_start"`
}

// TeamSource is the engine as the dashboard's front sees it.
type TeamSource interface {
	Team(ctx context.Context) (Team, error)
	// WatchTeam hears every change of the team (at most about once a
	// second for spending); stop ends it.
	WatchTeam() (changed <-chan struct{}, stop func())
	// AgentLog is an agent's last n log lines.
	AgentLog(agent string, n int) ([]api.LogLine, error)
	// Say posts text to a channel or an agent as the user.
	Say(ctx context.Context, to, text string) error
}

// Front is the host's side of the dashboard: it listens on the
// dashboard's loopback port, answers the team's routes itself from the
// engine (/api/team, /api/team/events, /api/team/log; and /api/send, the
// compose box, as the user), and passes everything else to the dashboard's
// container through its socket. The container, in the expendable tier,
// never reaches the engine; the page gets health, agents and spend only
// from here, and only what Team holds.
type Front struct {
	// Socket is the dashboard container's socket.
	Socket string
	// Key is what a browser must show (the container's key too).
	Key   string
	Guard webguard.Guard
	Team  TeamSource

	proxy *httputil.ReverseProxy
}

// maxSend bounds what the compose box may post.
const maxSend = 64 << 10

func (f *Front) init() {
	if f.proxy != nil {
		return
	}
	target := &url.URL{Scheme: "http", Host: "dashboard"}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the container checks the Host the browser used
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", f.Socket)
		}},
		FlushInterval: -1, // server-sent events pass as they come
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "the dashboard's container does not answer: "+err.Error(), http.StatusBadGateway)
		},
	}
}

// ServeHTTP answers the team's routes and passes the rest on.
func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.init()
	if !strings.HasPrefix(r.URL.Path, "/api/team") && r.URL.Path != "/api/send" {
		f.proxy.ServeHTTP(w, r)
		return
	}
	secure(w.Header())
	if err := f.Guard.Check(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if !admit(w, r, f.Key) {
		return
	}
	switch {
	case r.URL.Path == "/api/send":
		f.send(w, r)
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		http.Error(w, "read-only", http.StatusMethodNotAllowed)
	case r.URL.Path == "/api/team":
		t, err := f.Team.Team(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, t)
	case r.URL.Path == "/api/team/events":
		f.events(w, r)
	case r.URL.Path == "/api/team/log":
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n <= 0 || n > 500 {
			n = 100
		}
		lines, err := f.Team.AgentLog(r.URL.Query().Get("agent"), n)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		writeJSON(w, lines)
	default:
		http.NotFound(w, r)
	}
}

// send posts the compose box's message as the user: a POST of JSON from
// the dashboard's own page only (a browser names the page's origin; a
// form of another page could not send JSON without asking first), with
// the key.
func (f *Front) send(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("Origin") == "" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		http.Error(w, "only the dashboard's own page may send (JSON, with its Origin)", http.StatusForbidden)
		return
	}
	var m struct {
		To   string `json:"to"`
		Text string `json:"text"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxSend+1024)).Decode(&m); err != nil {
		http.Error(w, "a JSON object {to, text}, please: "+err.Error(), http.StatusBadRequest)
		return
	}
	m.Text = strings.TrimSpace(m.Text)
	switch {
	case m.Text == "":
		http.Error(w, "nothing to send", http.StatusBadRequest)
		return
	case len(m.Text) > maxSend:
		http.Error(w, fmt.Sprintf("a message of %d bytes at most", maxSend), http.StatusRequestEntityTooLarge)
		return
	}
	if err := f.Team.Say(r.Context(), m.To, m.Text); err != nil {
		status := http.StatusBadGateway
		var ae *api.Error
		if errors.As(err, &ae) && ae.Status != 0 {
			status = ae.Status
		}
		http.Error(w, err.Error(), status)
		return
	}
	writeJSON(w, map[string]string{"sent": m.To})
}

// events streams the team as server-sent events, one per change.
func (f *Front) events(w http.ResponseWriter, r *http.Request) {
	changed, stop := f.Team.WatchTeam()
	defer stop()
	streamEvents(w, r, changed, func() (any, error) { return f.Team.Team(r.Context()) })
}

// Serve answers on ln until ctx ends.
func (f *Front) Serve(ctx context.Context, ln net.Listener) error { return serve(ctx, f, ln) }
