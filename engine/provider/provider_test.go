package provider

import (
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"anthropic", "anthropic"}, {"grok", "xai"}, {"xai", "xai"}, {"gemini", "google"},
		{"groq", "groq"}, {"deepseek", "deepseek"}, {"mistral", "mistral"}, {"openai", "openai"}, {"acme", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p, ok := Lookup(tc.in)
			if p.Name != tc.want || ok != (tc.want != "") {
				t.Errorf("Lookup(%q) = %q, %v", tc.in, p.Name, ok)
			}
		})
	}
	if _, err := Parse("acme"); err == nil || !strings.Contains(err.Error(), "anthropic, deepseek, gemini, google, grok") {
		t.Errorf("Parse error: %v", err)
	}
	// Upstreams as the agentauth ecosystem defines them.
	g, _ := Lookup("groq")
	if g.BaseURL != "https://api.groq.com/openai" || g.Auth != AuthBearer {
		t.Errorf("groq: %+v", g)
	}
}

func TestCheckKey(t *testing.T) {
	const secret = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"
	for _, tc := range []struct {
		provider, key, err string
	}{
		{"anthropic", secret, ""},
		{"anthropic", "sk-proj-abcdefghijklmnopqrstuvwxyz", "anthropic keys start with sk-ant-"},
		{"openai", "sk-proj-abcdefghijklmnopqrstuvwxyz", ""},
		{"google", "AIzaSyabcdefghijklmnopqrstuvwxyz012345", ""},
		{"mistral", "abcdefghijklmnopqrstuvwxyz012345", ""},
		{"anthropic", "sk-ant-short", "anthropic key is 20..512 characters, this one has 12"},
		{"anthropic", "sk-ant-api03-abc defghijklmnopqrstuvwxyz", "contains spaces"},
		{"anthropic", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz\n", "contains spaces"},
		{"openai", secret, "this is an Anthropic key, not a openai one"},
		{"deepseek", secret, "this is an Anthropic key"},
		{"anthropic", "tsa_abcdefghijklmnopqrstuvwxyz0123", "TheSystem's own proxy tokens"},
		{"mistral", "tsu_abcdefghijklmnopqrstuvwxyz0123", "TheSystem's own proxy tokens"},
	} {
		t.Run(tc.provider+"/"+tc.err, func(t *testing.T) {
			p, _ := Lookup(tc.provider)
			err := p.CheckKey(tc.key)
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("CheckKey = %v, want %q", err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "abcdefghij") {
				t.Fatalf("error repeats the key: %v", err)
			}
		})
	}
}
