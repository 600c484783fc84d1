package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/thesystem-dev/thesystem/engine/provider/openaitest"
	"github.com/thesystem-dev/thesystem/engine/secrets"
)

// Keys planted for the tests: every scan looks for "PLANTED".
const (
	anthropicKey  = "sk-ant-api03-PLANTEDanthropicKEY0123456789abcdef"
	anthropicKey2 = "sk-ant-api03-PLANTEDrotatedKEY00123456789abcdef"
	openaiKey     = "sk-proj-PLANTEDopenaiKEY0123456789abcdef"
	googleKey     = "AIzaSyPLANTEDgoogleKEY0123456789abcdefgh"
	groqKey       = "gsk_PLANTEDgroqKEY0123456789abcdef"
)

// seen is what the fake upstream received.
type seen struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
}

// fakeUpstream plays the providers' APIs on 127.0.0.1: Anthropic messages
// and OpenAI chat completions, JSON or streamed, with usage.
type fakeUpstream struct {
	srv *httptest.Server

	mu    sync.Mutex
	reqs  []seen
	pace  chan struct{} // when set, each streamed event waits for a receive
	ctxCh chan context.Context
}

func newFakeUpstream(t testing.TB) *fakeUpstream {
	t.Helper()
	f := &fakeUpstream{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeUpstream) last() seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		return seen{}
	}
	return f.reqs[len(f.reqs)-1]
}

func (f *fakeUpstream) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func (f *fakeUpstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
	pace, ctxCh := f.pace, f.ctxCh
	f.mu.Unlock()
	if ctxCh != nil {
		ctxCh <- r.Context()
	}
	var req struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	_ = json.Unmarshal(body, &req)
	switch {
	case strings.HasSuffix(r.URL.Path, "/v1/messages"):
		if req.Stream {
			f.stream(w, r, pace, anthropicEvents(req.Model))
			return
		}
		writeJSON(w, map[string]any{
			"id": "msg_1", "type": "message", "role": "assistant", "model": req.Model,
			"content":     []any{map[string]any{"type": "text", "text": "Hello from the fake"}},
			"stop_reason": "end_turn", "stop_sequence": nil,
			"usage": map[string]any{"input_tokens": 25, "output_tokens": 15},
		})
	case strings.HasSuffix(r.URL.Path, "/chat/completions"):
		if req.Stream {
			f.stream(w, r, pace, openaiEvents(req.Model))
			return
		}
		writeJSON(w, map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": "Hello from the fake"}}},
			"usage": map[string]any{"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
		})
	case strings.HasSuffix(r.URL.Path, "/v1/responses") && req.Stream:
		openaitest.Stream(w, openaitest.Answer{Model: req.Model, InputTokens: 40, CachedTokens: 30, OutputTokens: 9, Text: "Hello from the responses"})
	case strings.Contains(r.URL.Path, ":generateContent"):
		writeJSON(w, map[string]any{
			"candidates":    []any{map[string]any{"content": map[string]any{"parts": []any{map[string]any{"text": "hi"}}}}},
			"usageMetadata": map[string]any{"promptTokenCount": 5, "candidatesTokenCount": 3},
		})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeUpstream) stream(w http.ResponseWriter, r *http.Request, pace chan struct{}, events []string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	for _, ev := range events {
		if pace != nil {
			select {
			case <-pace:
			case <-r.Context().Done():
				return
			}
		}
		if _, err := io.WriteString(w, ev); err != nil {
			return
		}
		_ = rc.Flush()
	}
}

func anthropicEvents(model string) []string {
	ev := func(name string, data any) string {
		b, _ := json.Marshal(data)
		return "event: " + name + "\ndata: " + string(b) + "\n\n"
	}
	return []string{
		ev("message_start", map[string]any{"type": "message_start", "message": map[string]any{
			"id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": []any{},
			"stop_reason": nil, "stop_sequence": nil, "usage": map[string]any{"input_tokens": 5, "cache_read_input_tokens": 15, "cache_creation_input_tokens": 5, "output_tokens": 1}}}),
		ev("content_block_start", map[string]any{"type": "content_block_start", "index": 0,
			"content_block": map[string]any{"type": "text", "text": ""}}),
		ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]any{"type": "text_delta", "text": "Hello "}}),
		ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]any{"type": "text_delta", "text": "streamed"}}),
		ev("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0}),
		ev("message_delta", map[string]any{"type": "message_delta",
			"delta": map[string]any{"stop_reason": "end_turn", "stop_sequence": nil}, "usage": map[string]any{"output_tokens": 15}}),
		ev("message_stop", map[string]any{"type": "message_stop"}),
	}
}

func openaiEvents(model string) []string {
	chunk := func(delta map[string]any, finish any, usage any) string {
		m := map[string]any{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
		if usage != nil {
			m["choices"] = []any{}
			m["usage"] = usage
		}
		b, _ := json.Marshal(m)
		return "data: " + string(b) + "\n\n"
	}
	return []string{
		chunk(map[string]any{"role": "assistant", "content": "Hello "}, nil, nil),
		chunk(map[string]any{"content": "streamed"}, nil, nil),
		chunk(map[string]any{}, "stop", nil),
		chunk(nil, nil, map[string]any{"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}),
		"data: [DONE]\n\n",
	}
}

// harness is a real proxy serving on 127.0.0.1 and a unix socket, in front
// of a fake upstream, with its audit log and logs captured for scanning.
type harness struct {
	t        testing.TB
	p        *Proxy
	up       *fakeUpstream
	url      string // http://127.0.0.1:port
	sock     string
	user     string // the user token
	auditBuf *syncBuffer
	logBuf   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newHarness(t *testing.T, mod func(*Options)) *harness {
	t.Helper()
	return newHarnessTB(t, mod)
}

func newHarnessTB(t testing.TB, mod func(*Options)) *harness {
	t.Helper()
	up := newFakeUpstream(t)
	h := &harness{t: t, up: up, auditBuf: &syncBuffer{}, logBuf: &syncBuffer{}}
	log := logrus.New()
	log.SetOutput(h.logBuf)
	log.SetLevel(logrus.DebugLevel)
	opt := Options{
		Upstreams: map[string]string{
			"anthropic": up.srv.URL, "openai": up.srv.URL, "google": up.srv.URL,
			"groq": up.srv.URL + "/openai", "xai": up.srv.URL, "mistral": up.srv.URL, "deepseek": up.srv.URL,
		},
		Audit: h.auditBuf,
		Log:   log,
	}
	if mod != nil {
		mod(&opt)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opt.Port = ln.Addr().(*net.TCPAddr).Port
	p, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetKeys(map[string]secrets.Key{
		"anthropic": secrets.NewKey(anthropicKey), "openai": secrets.NewKey(openaiKey),
		"google": secrets.NewKey(googleKey), "groq": secrets.NewKey(groqKey),
	}); err != nil {
		t.Fatal(err)
	}
	h.p = p
	h.url = "http://" + ln.Addr().String()
	h.sock = filepath.Join(t.TempDir(), "agentauth.sock")
	uln, err := lc.Listen(t.Context(), "unix", h.sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, l := range []net.Listener{ln, uln} {
		wg.Go(func() {
			if err := p.Serve(ctx, l); err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait(); h.scanForKeys() })
	if h.user, err = p.Tokens().IssueUser(); err != nil {
		t.Fatal(err)
	}
	return h
}

// scanForKeys fails the test if a planted key shows up in the audit log or
// the proxy's logs. Every test that uses the harness runs it at cleanup.
func (h *harness) scanForKeys() {
	for name, s := range map[string]string{"audit log": h.auditBuf.String(), "log": h.logBuf.String()} {
		if strings.Contains(s, "PLANTED") {
			h.t.Errorf("a key leaked into the %s:\n%s", name, s)
		}
		for _, tok := range []string{userPrefix, agentPrefix} {
			if strings.Contains(s, tok) {
				h.t.Errorf("a token leaked into the %s:\n%s", name, s)
			}
		}
	}
}

func (h *harness) audit() []AuditRecord {
	var out []AuditRecord
	for _, line := range strings.Split(strings.TrimSpace(h.auditBuf.String()), "\n") {
		if line == "" {
			continue
		}
		var r AuditRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			h.t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// do sends a raw request through the proxy's TCP port and returns the
// status and body. The body is checked for planted keys.
func (h *harness) do(method, path string, hdr map[string]string, body string) (int, string) {
	h.t.Helper()
	req, err := http.NewRequestWithContext(h.t.Context(), method, h.url+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(b), "PLANTED") {
		h.t.Errorf("a key leaked into a response: %s", b)
	}
	return resp.StatusCode, string(b)
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func mustHave(t *testing.T, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Errorf("%q does not contain %q", got, want)
	}
}

// pace makes the fake stream one event per receive on the returned
// channel, with room for n receives queued, and reports each streamed
// request's context on ctxCh.
func (f *fakeUpstream) paced(n int) (pace chan struct{}, ctxCh chan context.Context) {
	pace = make(chan struct{}, n)
	ctxCh = make(chan context.Context, 1)
	f.mu.Lock()
	f.pace, f.ctxCh = pace, ctxCh
	f.mu.Unlock()
	return pace, ctxCh
}
