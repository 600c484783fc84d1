package secrets

import (
	"strings"
	"testing"
)

func TestLooksLikeKey(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind string // "" = not a key
	}{
		{"sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "Anthropic key (sk-ant-…)"},
		{"x-api-key: sk-proj-abcdefghijklmnop1234", "OpenAI-style key (sk-…)"},
		{"AIzaSyA1234567890abcdefghijklmnopqrstuv", "Google API key (AIza…)"},
		{"xai-abcdefghijklmnopqrstu", "xAI key (xai-…)"},
		{"gsk_abcdefghijklmnopqrstu", "Groq key (gsk_…)"},
		{"ghp_abcdefghijklmnopqrstuvwxyz", "GitHub token (ghp_…)"},
		{"github_pat_abcdefghijklmnopqrstuvwxyz", "GitHub token (github_pat_…)"},
		{"sk-short", ""},
		{"task-force-alpha", ""},
		{"#general", ""},
		{"wss://chat.example.com", ""},
		{"", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			kind, ok := LooksLikeKey(tc.in)
			if ok != (tc.kind != "") || kind != tc.kind {
				t.Fatalf("LooksLikeKey(%q) = %q, %v; want %q", tc.in, kind, ok, tc.kind)
			}
			if ok && strings.Contains(kind, tc.in) {
				t.Fatalf("description repeats the key")
			}
		})
	}
}
