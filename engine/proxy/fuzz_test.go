package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzSplitRoute: whatever the path, an accepted route stays inside one
// provider's API: no dot or empty segments, no encoded separators, and the
// pieces put back together give the input.
func FuzzSplitRoute(f *testing.F) {
	for _, s := range []string{
		"/anthropic/v1/messages", "/openai/v1/chat/completions?x=1", "/groq/", "/google/v1beta/models/g:generateContent",
		"/anthropic/../openai/v1", "/anthropic/%2e%2e/openai", "/a%2fb", "//x", "/x/./y", "/", "", "/x/%zz", "/x\\y", "/x/\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		prov, rest, err := splitRoute(in)
		if err != nil {
			return
		}
		if prov == "" || strings.Contains(prov, "/") || "/"+prov+rest != in {
			t.Fatalf("split %q into %q + %q", in, prov, rest)
		}
		if rest != "" && !strings.HasPrefix(rest, "/") {
			t.Fatalf("rest %q of %q does not start with /", rest, in)
		}
		un := mustUnescape(rest)
		for _, seg := range strings.Split(un, "/")[1:] {
			if seg == "." || seg == ".." {
				t.Fatalf("%q unescapes to a dot segment: %q", in, un)
			}
		}
		if strings.ContainsAny(un, "\\\x00") {
			t.Fatalf("%q unescapes to %q", in, un)
		}
	})
}

// FuzzExtractToken: a token is only ever one of the values the client sent,
// and two different values are never silently picked between.
func FuzzExtractToken(f *testing.F) {
	f.Add("Bearer tsa_abc", "", "", "")
	f.Add("", "tsa_abc", "", "")
	f.Add("Bearer a", "b", "", "")
	f.Add("Basic x", "", "", "")
	f.Add("", "", "g", "g")
	f.Add("bearer  x ", "x", "x", "x")
	f.Fuzz(func(t *testing.T, auth, xapi, goog, qkey string) {
		h := http.Header{}
		if auth != "" {
			h.Set("Authorization", auth)
		}
		if xapi != "" {
			h.Set("X-Api-Key", xapi)
		}
		if goog != "" {
			h.Set("X-Goog-Api-Key", goog)
		}
		q := url.Values{}
		if qkey != "" {
			q.Set("key", qkey)
		}
		tok, err := extractToken(h, q)
		if err != nil {
			return
		}
		if tok == "" {
			t.Fatal("empty token accepted")
		}
		_, bearerTok, _ := strings.Cut(auth, " ")
		sent := map[string]bool{strings.TrimSpace(bearerTok): auth != "", xapi: xapi != "", goog: goog != "", qkey: qkey != ""}
		if !sent[tok] {
			t.Fatalf("token %q was not sent (auth=%q x-api-key=%q goog=%q key=%q)", tok, auth, xapi, goog, qkey)
		}
		for v, present := range sent {
			if present && v != "" && v != tok {
				t.Fatalf("picked %q over %q", tok, v)
			}
		}
	})
}
