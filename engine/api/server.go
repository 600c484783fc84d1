package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/thesystem-dev/thesystem/engine/listeners"
	"github.com/thesystem-dev/thesystem/engine/unixsock"
)

// Backend is what the API serves; the engine implements it. Handlers only
// decode a request, call one method and encode the result.
type Backend interface {
	Status() Status
	Subscribe() (Status, <-chan Status, func())
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Restart(ctx context.Context, component string) error
	Logs(component string, n int) ([]LogLine, error)
	FollowLogs(component string, n int) ([]LogLine, <-chan LogLine, func(), error)
	Keys(ctx context.Context) ([]KeyInfo, error)
	SetKey(ctx context.Context, provider, key string) (KeyInfo, error)
	DeleteKey(ctx context.Context, provider string) error
	RotateTokens(ctx context.Context) (int, error)
	Agents() []Agent
	// Chat is the team chat's last n messages; FollowChat those and the
	// next ones; ChatSend says something as the user.
	Chat(n int) []ChatMessage
	FollowChat(n int) ([]ChatMessage, <-chan ChatMessage, func())
	ChatSend(ctx context.Context, to, content string) error
	// Dashboard is the dashboard's address with the key a browser must
	// show, and a page that opens it.
	Dashboard() (Dashboard, error)
	// AgentDiff is what the agent changed in its working copy.
	// Usage is what the agents spent since since (zero: all), of one
	// agent ("" for all).
	Usage(ctx context.Context, since time.Time, agent string) (Usage, error)
	// With stat: its commits and files, not the diff itself.
	AgentDiff(ctx context.Context, name string, stat bool) (string, error)
	// AgentBundle writes the agent's branch as a git bundle to w.
	AgentBundle(ctx context.Context, name string, w io.Writer) (Bundle, error)
	Doctor(ctx context.Context) []Check
	// Reinstall drops cached images and runtimes and rebuilds them.
	Reinstall(ctx context.Context) error
	// Destroy stops the stack and deletes what it built.
	Destroy(ctx context.Context) error
	// Shutdown asks the daemon to stop the stack and exit.
	Shutdown()
}

// BundleHeader carries a bundle's branch and commit.
const BundleHeader = "X-Thesystem-Bundle"

// Host is the Host header the client sends; the server refuses others, so
// nothing that was not written as a client of this API (a browser, a
// confused proxy) is served.
const Host = "thesystem"

// Server serves the API on a unix socket.
type Server struct {
	Backend Backend
	Socket  string
	// SocketMode is the socket's mode; 0 means 0600. The directory is
	// always 0700, made so when it exists with another mode.
	SocketMode fs.FileMode
	// UID is the only peer user served; -1 means os.Getuid().
	UID int
}

// Serve listens and serves until ctx ends. A stale socket left by a dead
// daemon is replaced; a live one is not.
func (s *Server) Serve(ctx context.Context) error {
	mode := s.SocketMode
	if mode == 0 {
		mode = 0o600
	}
	if err := os.MkdirAll(filepath.Dir(s.Socket), 0o700); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Dir(s.Socket), 0o700); err != nil {
		return fmt.Errorf("the API socket's dir: %w", err)
	}
	ln, err := unixsock.Listen(ctx, s.Socket, mode)
	if err != nil {
		return err
	}
	uid := s.UID
	if uid < 0 {
		uid = os.Getuid()
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: listeners.ReadHeaderTimeout,
		IdleTimeout:       listeners.IdleTimeout,
		MaxHeaderBytes:    listeners.MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	shutDown := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(shutDown)
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = srv.Close()
	})
	defer stop()
	err = srv.Serve(listeners.Limit(&peerListener{Listener: ln, uid: uid}, listeners.MaxConns))
	if errors.Is(err, http.ErrServerClosed) {
		// Serve returns as the shutdown begins: the answers in flight (to
		// the stop that ended the daemon, say) must still reach their
		// clients before the process exits.
		<-shutDown
		return nil
	}
	return err
}

// peerListener hands on only connections from uid; others get a 403 and
// are closed.
type peerListener struct {
	net.Listener
	uid int
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uc, ok := c.(*net.UnixConn)
		if !ok {
			_ = c.Close()
			continue
		}
		peer, err := peerUID(uc)
		if err == nil && peer == l.uid {
			return c, nil
		}
		go refuse(uc, peer, err)
	}
}

func refuse(c *net.UnixConn, peer int, err error) {
	defer func() { _ = c.Close() }()
	msg := fmt.Sprintf("uid %d may not use this engine", peer)
	if err != nil {
		msg = "could not identify the peer: " + err.Error()
	}
	body, _ := json.Marshal(map[string]any{"error": Error{Code: ErrForbidden.Code, Message: msg}})
	_ = c.SetDeadline(time.Now().Add(time.Second))
	_, _ = fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	// Half-close and drain what the peer sent, so closing does not reset
	// the connection before the peer has read the answer.
	_ = c.CloseWrite()
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 1<<20))
}

// Handler is the route table.
func (s *Server) Handler() http.Handler {
	b := s.Backend
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, b.Status()) })
	mux.HandleFunc("POST /v1/start", func(w http.ResponseWriter, r *http.Request) { reply(w, nil, b.Start(r.Context())) })
	mux.HandleFunc("POST /v1/stop", func(w http.ResponseWriter, r *http.Request) { reply(w, nil, b.Stop(r.Context())) })
	mux.HandleFunc("POST /v1/restart/{component}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, b.Restart(r.Context(), r.PathValue("component")))
	})
	mux.HandleFunc("GET /v1/logs", s.logs)
	mux.HandleFunc("GET /v1/events", s.events)
	mux.HandleFunc("GET /v1/chat", s.chat)
	mux.HandleFunc("GET /v1/usage", func(w http.ResponseWriter, r *http.Request) {
		since, err := ParseSince(r.URL.Query().Get("since"), time.Now())
		if err != nil {
			reply(w, nil, Errorf(ErrBadRequest, err.Error()))
			return
		}
		u, err := b.Usage(r.Context(), since, r.URL.Query().Get("agent"))
		reply(w, u, err)
	})
	mux.HandleFunc("GET /v1/agents/{name}/diff", func(w http.ResponseWriter, r *http.Request) {
		d, err := b.AgentDiff(r.Context(), r.PathValue("name"), r.URL.Query().Get("stat") == "1")
		reply(w, AgentDiff{Diff: d}, err)
	})
	mux.HandleFunc("GET /v1/agents/{name}/bundle", func(w http.ResponseWriter, r *http.Request) {
		// Into a file first: the answer's status and headers say whether
		// it worked, before any of the bundle is sent.
		f, err := os.CreateTemp("", "thesystem-bundle-*")
		if err != nil {
			reply(w, nil, err)
			return
		}
		defer func() { _ = f.Close(); _ = os.Remove(f.Name()) }()
		bundle, err := b.AgentBundle(r.Context(), r.PathValue("name"), f)
		if err != nil {
			reply(w, nil, err)
			return
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			reply(w, nil, err)
			return
		}
		w.Header().Set("Content-Type", "application/x-git-bundle")
		w.Header().Set(BundleHeader, bundle.Branch+" "+bundle.Commit)
		_, _ = io.Copy(w, f)
	})
	mux.HandleFunc("GET /v1/dashboard", func(w http.ResponseWriter, r *http.Request) {
		d, err := b.Dashboard()
		reply(w, d, err)
	})
	mux.HandleFunc("POST /v1/chat", func(w http.ResponseWriter, r *http.Request) {
		var in ChatSend
		// The chat takes up to 2 MiB a message; JSON may escape it.
		if err := json.NewDecoder(io.LimitReader(r.Body, 16<<20)).Decode(&in); err != nil {
			reply(w, nil, Errorf(ErrBadRequest, "body must be {\"to\": \"#channel or agent\", \"content\": \"…\"}"))
			return
		}
		reply(w, nil, b.ChatSend(r.Context(), in.To, in.Content))
	})
	mux.HandleFunc("GET /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		keys, err := b.Keys(r.Context())
		reply(w, keys, err)
	})
	mux.HandleFunc("PUT /v1/keys/{provider}", func(w http.ResponseWriter, r *http.Request) {
		var req SetKeyRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&req); err != nil {
			reply(w, nil, Errorf(ErrBadRequest, "body must be {\"key\": \"…\"}"))
			return
		}
		info, err := b.SetKey(r.Context(), r.PathValue("provider"), req.Key)
		reply(w, info, err)
	})
	mux.HandleFunc("DELETE /v1/keys/{provider}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, b.DeleteKey(r.Context(), r.PathValue("provider")))
	})
	mux.HandleFunc("POST /v1/tokens/rotate", func(w http.ResponseWriter, r *http.Request) {
		n, err := b.RotateTokens(r.Context())
		reply(w, map[string]int{"rotated": n}, err)
	})
	mux.HandleFunc("POST /v1/destroy", func(w http.ResponseWriter, r *http.Request) { reply(w, nil, b.Destroy(r.Context())) })
	mux.HandleFunc("POST /v1/reinstall", func(w http.ResponseWriter, r *http.Request) { reply(w, nil, b.Reinstall(r.Context())) })
	mux.HandleFunc("GET /v1/agents", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, b.Agents()) })
	mux.HandleFunc("GET /v1/doctor", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, b.Doctor(r.Context())) })
	mux.HandleFunc("POST /v1/shutdown", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, nil)
		go b.Shutdown()
	})
	return guard(mux)
}

// guard refuses browsers and foreign hosts before any route runs.
func guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Origin") != "" || r.Header.Get("Referer") != "":
			reply(w, nil, Errorf(ErrForbidden, "requests from web pages are refused"))
		case r.Host != Host && r.Host != "localhost" && r.Host != "":
			reply(w, nil, Errorf(ErrForbidden, fmt.Sprintf("host %q refused; clients send Host: %s", r.Host, Host)))
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// reply writes v (or {} when nil) on success, the mapped error otherwise.
func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		e := toError(err)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(e.Status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": e})
		return
	}
	if v == nil {
		v = struct{}{}
	}
	writeJSON(w, v)
}

// stream writes JSON lines, flushing each.
func stream(w http.ResponseWriter) func(v any) error {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	_ = rc.Flush()
	return func(v any) error {
		if err := enc.Encode(v); err != nil {
			return err
		}
		return rc.Flush()
	}
}

// countParam is the query's n (def when absent), answering a bad one.
func countParam(w http.ResponseWriter, r *http.Request, def int) (int, bool) {
	v := r.URL.Query().Get("n")
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		reply(w, nil, Errorf(ErrBadRequest, "n must be a number ≥ 0"))
		return 0, false
	}
	return n, true
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, ok := countParam(w, r, 100)
	if !ok {
		return
	}
	comp := q.Get("component")
	if q.Get("follow") != "1" {
		lines, err := s.Backend.Logs(comp, n)
		reply(w, lines, err)
		return
	}
	backlog, ch, stop, err := s.Backend.FollowLogs(comp, n)
	if err != nil {
		reply(w, nil, err)
		return
	}
	defer stop()
	send := stream(w)
	for _, l := range backlog {
		if send(l) != nil {
			return
		}
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case l, ok := <-ch:
			if !ok || send(l) != nil {
				return
			}
		}
	}
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	n, ok := countParam(w, r, 50)
	if !ok {
		return
	}
	// channel=#name: that channel's messages only, the last n of them.
	channel := r.URL.Query().Get("channel")
	if channel != "" && (!strings.HasPrefix(channel, "#") || len(channel) < 2) {
		reply(w, nil, Errorf(ErrBadRequest, fmt.Sprintf("channel must be a #name, got %q", channel)))
		return
	}
	in := func(m ChatMessage) bool { return channel == "" || !m.Direct && m.To == channel }
	last := func(msgs []ChatMessage) []ChatMessage {
		if channel == "" {
			return msgs
		}
		msgs = slices.DeleteFunc(msgs, func(m ChatMessage) bool { return !in(m) })
		return msgs[max(0, len(msgs)-n):]
	}
	want := n
	if channel != "" {
		want = math.MaxInt // all the engine keeps, filtered below
	}
	if r.URL.Query().Get("follow") != "1" {
		writeJSON(w, last(s.Backend.Chat(want)))
		return
	}
	backlog, ch, stop := s.Backend.FollowChat(want)
	defer stop()
	send := stream(w)
	for _, m := range last(backlog) {
		if send(m) != nil {
			return
		}
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case m, ok := <-ch:
			if !ok || in(m) && send(m) != nil {
				return
			}
		}
	}
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	first, ch, stop := s.Backend.Subscribe()
	defer stop()
	send := stream(w)
	if send(first) != nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case st, ok := <-ch:
			if !ok || send(st) != nil {
				return
			}
		}
	}
}
