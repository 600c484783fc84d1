package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/thesystem-dev/thesystem/engine/secrets"
)

func anthropicClient(h *harness, tok string) anthropic.Client {
	return anthropic.NewClient(aoption.WithBaseURL(h.url+"/anthropic"), aoption.WithAPIKey(tok), aoption.WithMaxRetries(0))
}

func openaiClient(h *harness, tok string) openai.Client {
	return openai.NewClient(ooption.WithBaseURL(h.url+"/openai/v1"), ooption.WithAPIKey(tok), ooption.WithMaxRetries(0))
}

var anthropicParams = anthropic.MessageNewParams{
	Model:     "claude-test",
	MaxTokens: 64,
	Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello"))},
}

var openaiParams = openai.ChatCompletionNewParams{
	Model:    "gpt-test",
	Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")},
}

// checkInjected asserts the upstream got the real key in the provider's
// header and no trace of the token.
func checkInjected(t *testing.T, s seen, header, want, tok string) {
	t.Helper()
	if got := s.Header.Get(header); got != want {
		t.Errorf("upstream %s = %q, want the real key", header, redactForTest(got))
	}
	for name, vals := range s.Header {
		for _, v := range vals {
			if strings.Contains(v, tok) {
				t.Errorf("the token reached the upstream in %s", name)
			}
		}
	}
	if strings.Contains(s.Query, tok) {
		t.Error("the token reached the upstream in the query")
	}
}

func redactForTest(s string) string {
	if strings.Contains(s, "PLANTED") {
		return "<a planted key>"
	}
	return s
}

func TestAnthropicSDK(t *testing.T) {
	h := newHarness(t, nil)
	agentTok, err := h.p.Tokens().Issue("agent-1")
	if err != nil {
		t.Fatal(err)
	}
	c := anthropicClient(h, agentTok)

	msg, err := c.Messages.New(t.Context(), anthropicParams)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Content[0].Text != "Hello from the fake" || msg.Usage.OutputTokens != 15 {
		t.Errorf("message %+v", msg)
	}
	s := h.up.last()
	checkInjected(t, s, "X-Api-Key", anthropicKey, agentTok)
	if s.Path != "/v1/messages" || s.Header.Get("Anthropic-Version") == "" {
		t.Errorf("upstream path %q, anthropic-version %q", s.Path, s.Header.Get("Anthropic-Version"))
	}

	stream := c.Messages.NewStreaming(t.Context(), anthropicParams)
	acc := anthropic.Message{}
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Content[0].Text != "Hello streamed" {
		t.Errorf("streamed text %q", acc.Content[0].Text)
	}
	checkInjected(t, h.up.last(), "X-Api-Key", anthropicKey, agentTok)

	recs := h.audit()
	if len(recs) != 2 {
		t.Fatalf("audit has %d records, want 2", len(recs))
	}
	for i, r := range recs {
		if r.Agent != "agent-1" || r.Provider != "anthropic" || r.Model != "claude-test" || r.Status != 200 ||
			r.In != 25 || r.Out != 15 || r.BytesOut == 0 || r.BytesIn == 0 || r.Path != "/anthropic/v1/messages" {
			t.Errorf("audit %d: %+v", i, r)
		}
	}
	// The stream's cache reads and writes, apart (and in In, as budgets count).
	if r := recs[1]; r.CacheRead != 15 || r.CacheWrite != 5 || recs[0].CacheRead != 0 {
		t.Errorf("cache tokens: %+v, %+v", recs[0].Usage, r.Usage)
	}
	if u := h.p.Usage()["agent-1"]; u.Requests != 2 || u.Tokens != 80 {
		t.Errorf("usage %+v", u)
	}
}

func TestOpenAISDK(t *testing.T) {
	h := newHarness(t, nil)
	tok, _ := h.p.Tokens().Issue("agent-2")
	c := openaiClient(h, tok)

	res, err := c.Chat.Completions.New(t.Context(), openaiParams)
	if err != nil {
		t.Fatal(err)
	}
	if res.Choices[0].Message.Content != "Hello from the fake" {
		t.Errorf("completion %+v", res)
	}
	checkInjected(t, h.up.last(), "Authorization", "Bearer "+openaiKey, tok)

	params := openaiParams
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := c.Chat.Completions.NewStreaming(t.Context(), params)
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Choices[0].Message.Content != "Hello streamed" || acc.Usage.CompletionTokens != 7 {
		t.Errorf("streamed %q usage %+v", acc.Choices[0].Message.Content, acc.Usage)
	}
	for i, r := range h.audit() {
		if r.In != 11 || r.Out != 7 || r.Model != "gpt-test" || r.Provider != "openai" {
			t.Errorf("audit %d: %+v", i, r)
		}
	}

	// The Responses API, streamed (what the Codex CLI speaks): its usage
	// counted, the cached part of the input apart.
	rs := c.Responses.NewStreaming(t.Context(), responses.ResponseNewParams{Model: "gpt-test",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hello")}})
	text := ""
	for rs.Next() {
		if ev := rs.Current(); ev.Type == "response.completed" {
			text = ev.Response.OutputText()
		}
	}
	if err := rs.Err(); err != nil || text != "Hello from the responses" {
		t.Fatalf("responses: %q %v", text, err)
	}
	checkInjected(t, h.up.last(), "Authorization", "Bearer "+openaiKey, tok)
	recs := h.audit()
	if r := recs[len(recs)-1]; r.In != 40 || r.CacheRead != 30 || r.Out != 9 || r.Path != "/openai/v1/responses" {
		t.Errorf("the responses' audit record: %+v", r)
	}
}

// TestOtherProviders: auth style and upstream path per provider.
func TestOtherProviders(t *testing.T) {
	h := newHarness(t, nil)
	body := `{"model":"m","messages":[]}`
	for _, tc := range []struct {
		name, path, header, want, upPath string
	}{
		{"google", "/google/v1beta/models/gemini-x:generateContent", "X-Goog-Api-Key", googleKey, "/v1beta/models/gemini-x:generateContent"},
		{"groq base path", "/groq/v1/chat/completions", "Authorization", "Bearer " + groqKey, "/openai/v1/chat/completions"},
		{"alias", "/gemini/v1beta/models/gemini-x:generateContent", "X-Goog-Api-Key", googleKey, "/v1beta/models/gemini-x:generateContent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _ := h.do("POST", tc.path, bearer(h.user), body)
			s := h.up.last()
			if code != 200 || s.Path != tc.upPath {
				t.Fatalf("status %d upstream path %q", code, s.Path)
			}
			checkInjected(t, s, tc.header, tc.want, h.user)
		})
	}
	recs := h.audit()
	if r := recs[0]; r.Model != "gemini-x" || r.In != 5 || r.Out != 3 || r.Agent != "user" {
		t.Errorf("google audit %+v", r)
	}
	// Google's ?key= carries the token in; it is stripped, never forwarded.
	code, _ := h.do("POST", "/google/v1beta/models/g:generateContent?key="+h.user+"&alt=json", nil, "{}")
	s := h.up.last()
	if code != 200 || s.Query != "alt=json" {
		t.Errorf("query key: status %d upstream query %q", code, s.Query)
	}
	checkInjected(t, s, "X-Goog-Api-Key", googleKey, h.user)
}

func TestRevocation(t *testing.T) {
	h := newHarness(t, nil)
	tok, _ := h.p.Tokens().Issue("agent-1")
	other, _ := h.p.Tokens().Issue("agent-2")
	c := anthropicClient(h, tok)
	if _, err := c.Messages.New(t.Context(), anthropicParams); err != nil {
		t.Fatal(err)
	}
	if !h.p.Revoke("agent-1") {
		t.Fatal("Revoke found no token")
	}
	n := h.up.count()
	_, err := c.Messages.New(t.Context(), anthropicParams)
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Fatalf("after revoke: %v", err)
	}
	if h.up.count() != n {
		t.Error("a revoked token's request reached the upstream")
	}
	// Others are unaffected.
	c2 := anthropicClient(h, other)
	if _, err := c2.Messages.New(t.Context(), anthropicParams); err != nil {
		t.Fatalf("agent-2 after agent-1 revoked: %v", err)
	}
	// Re-issuing gives a new token; the old one stays dead.
	tok2, _ := h.p.Tokens().Issue("agent-1")
	if tok2 == tok {
		t.Fatal("re-issued the same token")
	}
	c3 := anthropicClient(h, tok2)
	if _, err := c3.Messages.New(t.Context(), anthropicParams); err != nil {
		t.Fatal(err)
	}
	if code, _ := h.do("POST", "/anthropic/v1/messages", bearer(tok), "{}"); code != 401 {
		t.Errorf("old token: %d", code)
	}
}

// TestRevocationCutsStream: revoking an agent ends its stream in flight.
func TestRevocationCutsStream(t *testing.T) {
	h := newHarness(t, nil)
	tok, _ := h.p.Tokens().Issue("agent-1")
	pace, ctxCh := h.up.paced(1)
	pace <- struct{}{} // only message_start goes out

	c := anthropicClient(h, tok)
	stream := c.Messages.NewStreaming(t.Context(), anthropicParams)
	upCtx := <-ctxCh
	if !stream.Next() {
		t.Fatalf("no first event: %v", stream.Err())
	}
	h.p.Revoke("agent-1")
	select {
	case <-upCtx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not cancelled by the revocation")
	}
	for stream.Next() {
	}
	if stream.Err() == nil {
		t.Error("the stream ended cleanly after revocation")
	}
}

// TestRotateAgentTokens: every agent token is replaced; the old ones fail.
func TestRotateAgentTokens(t *testing.T) {
	h := newHarness(t, nil)
	old := map[string]string{}
	for _, a := range []string{"a1", "a2", "a3"} {
		old[a], _ = h.p.Tokens().Issue(a)
	}
	fresh, err := h.p.RotateAgentTokens()
	if err != nil || len(fresh) != 3 {
		t.Fatalf("rotate: %v %v", fresh, err)
	}
	for a, tok := range old {
		if code, _ := h.do("POST", "/anthropic/v1/messages", bearer(tok), `{"model":"m"}`); code != 401 {
			t.Errorf("%s old token: %d", a, code)
		}
		if code, _ := h.do("POST", "/anthropic/v1/messages", bearer(fresh[a]), `{"model":"m"}`); code != 200 {
			t.Errorf("%s new token: %d", a, code)
		}
	}
	// The user token is not an agent token.
	if code, _ := h.do("POST", "/anthropic/v1/messages", bearer(h.user), `{"model":"m"}`); code != 200 {
		t.Errorf("user token after agent rotation: %d", code)
	}
}

// TestHotSwapKey: a new key applies to the next request while a stream
// that started with the old key finishes undisturbed.
func TestHotSwapKey(t *testing.T) {
	h := newHarness(t, nil)
	pace, ctxCh := h.up.paced(7)
	pace <- struct{}{}

	c := anthropicClient(h, h.user)
	stream := c.Messages.NewStreaming(t.Context(), anthropicParams)
	<-ctxCh
	if !stream.Next() {
		t.Fatal(stream.Err())
	}
	if err := h.p.SetKey("anthropic", secrets.NewKey(anthropicKey2)); err != nil {
		t.Fatal(err)
	}
	h.up.paced(0) // later requests are not paced
	for range 6 {
		pace <- struct{}{}
	}
	events := 1
	for stream.Next() {
		events++
	}
	if err := stream.Err(); err != nil || events != 7 {
		t.Fatalf("the stream begun before the swap: %d events, %v", events, err)
	}
	if h.up.reqs[0].Header.Get("X-Api-Key") != anthropicKey {
		t.Error("the in-flight stream was not sent with the old key")
	}
	if _, err := c.Messages.New(t.Context(), anthropicParams); err != nil {
		t.Fatal(err)
	}
	checkInjected(t, h.up.last(), "X-Api-Key", anthropicKey2, h.user)
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	h := newHarness(t, nil)
	pace, ctxCh := h.up.paced(1)
	pace <- struct{}{}
	ctx, cancel := context.WithCancel(t.Context())
	c := anthropicClient(h, h.user)
	stream := c.Messages.NewStreaming(ctx, anthropicParams)
	upCtx := <-ctxCh
	if !stream.Next() {
		t.Fatal(stream.Err())
	}
	cancel()
	select {
	case <-upCtx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client went away but the upstream request goes on")
	}
	_ = stream.Close()
}

func TestBudget(t *testing.T) {
	t.Run("requests", func(t *testing.T) {
		var spentMu sync.Mutex
		var spent []string
		h := newHarness(t, func(o *Options) {
			o.Budget = Budget{Requests: 2, Period: time.Hour}
			o.OnBudgetSpent = func(agent, msg string) { spentMu.Lock(); spent = append(spent, agent+": "+msg); spentMu.Unlock() }
		})
		tok, _ := h.p.Tokens().Issue("agent-1")
		c := anthropicClient(h, tok)
		for range 2 {
			if _, err := c.Messages.New(t.Context(), anthropicParams); err != nil {
				t.Fatal(err)
			}
		}
		n := h.up.count()
		code, body := h.do("POST", "/anthropic/v1/messages", bearer(tok), "{}")
		if code != 429 {
			t.Fatalf("third request: %d %s", code, body)
		}
		var e struct {
			Error struct{ Type, Message string }
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Type != "budget_exceeded" {
			t.Fatalf("429 body %s", body)
		}
		mustHave(t, e.Error.Message, "agent agent-1 has spent its budget: 2 of 2 requests in 1h0m0s; it resets at ")
		spentMu.Lock()
		if len(spent) != 1 || !strings.HasPrefix(spent[0], "agent-1: agent agent-1 has spent its budget") {
			t.Errorf("OnBudgetSpent got %q", spent)
		}
		spentMu.Unlock()
		if h.up.count() != n {
			t.Error("a request over budget reached the upstream")
		}
		// The user is never limited.
		if code, _ := h.do("POST", "/anthropic/v1/messages", bearer(h.user), `{"model":"m"}`); code != 200 {
			t.Errorf("user over agent budget: %d", code)
		}
		// An agent reads its own count (never another's), as the proxy
		// counted it; the usage route needs a token and costs nothing.
		if code, _ := h.do("GET", "/agentauth/usage", nil, ""); code != 401 {
			t.Errorf("usage without a token: %d", code)
		}
		for range 2 {
			code, body := h.do("GET", "/agentauth/usage", bearer(tok), "")
			var own OwnUsage
			if err := json.Unmarshal([]byte(body), &own); err != nil || code != 200 {
				t.Fatalf("usage: %d %s", code, body)
			}
			if own.Agent != "agent-1" || own.Requests != 2 || own.Tokens == 0 || own.Budget.Requests != 2 || own.Since.IsZero() || own.Refused != 1 {
				t.Errorf("usage: %+v", own)
			}
		}
	})
	t.Run("tokens from a stream, then reset", func(t *testing.T) {
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var mu sync.Mutex
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		h := newHarness(t, func(o *Options) { o.Budget = Budget{Tokens: 40, Period: time.Hour}; o.Now = clock })
		tok, _ := h.p.Tokens().Issue("agent-1")
		c := anthropicClient(h, tok)
		stream := c.Messages.NewStreaming(t.Context(), anthropicParams)
		for stream.Next() {
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		// 25 in + 15 out = 40: spent.
		code, body := h.do("POST", "/anthropic/v1/messages", bearer(tok), "{}")
		if code != 429 || !strings.Contains(body, "40 of 40 tokens") {
			t.Fatalf("after streamed 40 tokens: %d %s", code, body)
		}
		mu.Lock()
		now = now.Add(time.Hour)
		mu.Unlock()
		if code, _ := h.do("POST", "/anthropic/v1/messages", bearer(tok), `{"model":"m"}`); code != 200 {
			t.Errorf("after the period: %d", code)
		}
	})
}

func TestHealthAndProviders(t *testing.T) {
	h := newHarness(t, nil)
	code, body := h.do("GET", "/agentauth/health", nil, "")
	var health struct {
		Status   string
		Backends []string
		Port     int
	}
	if err := json.Unmarshal([]byte(body), &health); err != nil || code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if health.Status != "ok" || strings.Join(health.Backends, ",") != "anthropic,google,groq,openai" || health.Port == 0 {
		t.Errorf("health %+v", health)
	}
	if code, _ := h.do("GET", "/agentauth/providers", nil, ""); code != 401 {
		t.Errorf("providers without a token: %d", code)
	}
	code, body = h.do("GET", "/agentauth/providers", bearer(h.user), "")
	if code != 200 || !strings.Contains(body, `"name":"xai","aliases":["grok"]`) || !strings.Contains(body, `"configured":true`) {
		t.Errorf("providers %d %s", code, body)
	}
	for _, r := range h.audit() {
		if r.Path != "/agentauth/providers" {
			t.Errorf("health checks are not audited, got %+v", r)
		}
	}
	if len(h.audit()) != 2 {
		t.Errorf("both providers calls are audited: %d records", len(h.audit()))
	}
}

// TestRefusals: everything the proxy answers itself, never forwarding.
func TestRefusals(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxBody = 1 << 20 })
	agent, _ := h.p.Tokens().Issue("agent-1")
	_ = h.p.SetKey("openai", secrets.Key{})
	for _, tc := range []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		body   string
		code   int
		want   string
	}{
		{"no token", "POST", "/anthropic/v1/messages", nil, "{}", 401, "no token"},
		{"wrong token", "POST", "/anthropic/v1/messages", bearer("tsa_" + strings.Repeat("0", 64)), "{}", 401, "invalid or revoked token"},
		{"a real key is not a token", "POST", "/anthropic/v1/messages", map[string]string{"X-Api-Key": anthropicKey}, "{}", 401, "invalid or revoked token"},
		{"basic auth", "POST", "/anthropic/v1/messages", map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, "{}", 401, "no token"},
		{"two different credentials", "POST", "/anthropic/v1/messages", map[string]string{"Authorization": "Bearer " + h.user, "X-Api-Key": agent}, "{}", 401, "several different credentials"},
		{"origin", "POST", "/anthropic/v1/messages", map[string]string{"Authorization": "Bearer " + h.user, "Origin": "https://evil.example"}, "{}", 403, "web pages are refused"},
		{"referer", "GET", "/agentauth/health", map[string]string{"Referer": "https://evil.example/x"}, "", 403, "web pages"},
		{"a rebinding page's Host", "GET", "/agentauth/health", map[string]string{"Host": "evil.example:9999"}, "", 403, "rebinding"},
		{"dot-dot to another provider", "POST", "/anthropic/../openai/v1/chat/completions", bearer(h.user), "{}", 400, "malformed path"},
		{"encoded dot-dot", "POST", "/anthropic/%2e%2e/openai/v1/chat/completions", bearer(h.user), "{}", 400, "malformed path"},
		{"encoded slash", "POST", "/anthropic%2F..%2Fopenai/v1", bearer(h.user), "{}", 400, "malformed path"},
		{"double slash", "POST", "/anthropic//v1/messages", bearer(h.user), "{}", 400, "malformed path"},
		{"unknown provider", "POST", "/acme/v1/x", bearer(h.user), "{}", 404, `unknown provider "acme"`},
		{"agentauth is not a provider", "GET", "/agentauth/keys", bearer(h.user), "", 404, "unknown provider"},
		{"no key stored", "POST", "/openai/v1/chat/completions", bearer(h.user), "{}", 503, "no openai key is stored: run `thesystem keys set openai`"},
		{"too big", "POST", "/anthropic/v1/messages", bearer(h.user), strings.Repeat("x", 2<<20), 413, "request body over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := h.up.count()
			code, body := h.do(tc.method, tc.path, tc.hdr, tc.body)
			if code != tc.code {
				t.Errorf("status %d, want %d (%s)", code, tc.code, body)
			}
			var e struct {
				Type  string
				Error struct{ Type, Message string }
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Type != "error" {
				t.Fatalf("not an error document: %s", body)
			}
			mustHave(t, e.Error.Message, tc.want)
			if h.up.count() != n {
				t.Error("a refused request reached the upstream")
			}
		})
	}
	if t.Failed() {
		return
	}
	for _, r := range h.audit() {
		if r.Refused == "" {
			t.Errorf("refusal without a reason in the audit: %+v", r)
		}
	}
}

// TestCredentialStripping: whatever credential headers a client sends, the
// upstream sees only the injected key. A Connection header naming the key
// header (which would make a Director-style proxy drop the injected key)
// changes nothing.
func TestCredentialStripping(t *testing.T) {
	h := newHarness(t, nil)
	code, _ := h.do("POST", "/anthropic/v1/messages", map[string]string{
		"X-Api-Key":           h.user,
		"Authorization":       "Bearer " + h.user,
		"X-Goog-Api-Key":      h.user,
		"Proxy-Authorization": "Basic c2VjcmV0",
		"Cookie":              "session=abc",
		"Api-Key":             "azure-style",
		"Connection":          "X-Api-Key, Keep-Alive",
	}, `{"model":"m"}`)
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	s := h.up.last()
	checkInjected(t, s, "X-Api-Key", anthropicKey, h.user)
	for _, hdr := range []string{"Authorization", "X-Goog-Api-Key", "Proxy-Authorization", "Cookie", "Api-Key", "X-Forwarded-For"} {
		if v := s.Header.Get(hdr); v != "" {
			t.Errorf("upstream got %s: %q", hdr, redactForTest(v))
		}
	}
}

func TestTCPAllowlist(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Allow = []netip.Prefix{netip.MustParsePrefix("::1/128")} })
	code, body := h.do("GET", "/agentauth/health", nil, "")
	if code != 403 || !strings.Contains(body, "may not use the proxy") {
		t.Errorf("127.0.0.1 outside the allowlist: %d %s", code, body)
	}
	// The unix socket is always served.
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", h.sock)
	}}}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", "http://agentauth/anthropic/v1/messages", strings.NewReader(`{"model":"m"}`))
	req.Header.Set("Authorization", "Bearer "+h.user)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.Contains(string(b), "PLANTED") {
		t.Errorf("over the socket: %d %s", resp.StatusCode, b)
	}
}

func TestUpstreamDown(t *testing.T) {
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	_ = ln.Close()
	h := newHarness(t, func(o *Options) { o.Upstreams["anthropic"] = dead })
	code, body := h.do("POST", "/anthropic/v1/messages", bearer(h.user), `{"model":"m"}`)
	if code != 502 || !strings.Contains(body, "anthropic upstream unreachable") {
		t.Errorf("%d %s", code, body)
	}
	if !strings.Contains(h.logBuf.String(), "upstream request failed") {
		t.Errorf("not logged: %s", h.logBuf.String())
	}
}

func TestNewRejectsBadUpstreams(t *testing.T) {
	for _, tc := range []struct {
		name string
		up   map[string]string
		want string
	}{
		{"unknown provider", map[string]string{"acme": "http://127.0.0.1:1"}, `unknown provider "acme"`},
		{"not http", map[string]string{"openai": "ftp://x"}, "not an http(s) URL"},
		{"credentials in URL", map[string]string{"openai": "https://u:p@x"}, "must not carry credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(Options{Upstreams: tc.up}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestStopCutsOff: cancelling Serve closes every connection at once.
func TestStopCutsOff(t *testing.T) {
	p, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- p.Serve(ctx, ln) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if c, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", ln.Addr().String()); err == nil {
		_ = c.Close()
		t.Error("still accepting after stop")
	}
}

// TestRefusedSlowBodyClosed: a request refused before its body is read
// (here, a bad token) is answered and its connection closed at once, even
// while the client trickles the body a byte at a time.
func TestRefusedSlowBodyClosed(t *testing.T) {
	h := newHarness(t, nil)
	c, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /anthropic/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: tsa_nope\r\nContent-Length: 100000\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte every 100 ms, for as long as the connection lives
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
		t.Fatalf("status %d, close %v", resp.StatusCode, resp.Close)
	}
	// The server hangs up: a read ends (EOF or reset) long before the body would.
	if _, err := io.Copy(io.Discard, c); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the connection is still open after the refusal")
	}
}
