// Package secrets holds everything that touches provider keys on the host:
// recognising a string that looks like a key (so it can be refused or
// redacted wherever it shows up) and, from later work, the key store backed
// by the macOS Keychain or the Linux Secret Service.
package secrets

import "regexp"

// A keyPattern recognises one family of provider credentials.
type keyPattern struct {
	kind string
	re   *regexp.Regexp
}

// patterns is read-only after initialisation; the order puts the more
// specific prefixes first so the reported kind is the most precise one.
var patterns = []keyPattern{
	{"Anthropic key (sk-ant-…)", regexp.MustCompile(`sk-ant-[A-Za-z0-9_\-]{16,}`)},
	{"OpenAI-style key (sk-…)", regexp.MustCompile(`sk-[A-Za-z0-9_\-]{16,}`)},
	{"Google API key (AIza…)", regexp.MustCompile(`AIza[0-9A-Za-z_\-]{30,}`)},
	{"xAI key (xai-…)", regexp.MustCompile(`xai-[A-Za-z0-9_\-]{16,}`)},
	{"Groq key (gsk_…)", regexp.MustCompile(`gsk_[A-Za-z0-9]{16,}`)},
	{"GitHub token (ghp_…)", regexp.MustCompile(`gh[pousr]_[A-Za-z0-9]{20,}`)},
	{"GitHub token (github_pat_…)", regexp.MustCompile(`github_pat_[A-Za-z0-9_]{20,}`)},
}

// LooksLikeKey reports whether s contains something shaped like a provider
// key, and which kind. The returned description never includes s itself, so
// it is safe to put in an error message or a log line.
func LooksLikeKey(s string) (kind string, ok bool) {
	for _, p := range patterns {
		if p.re.MatchString(s) {
			return p.kind, true
		}
	}
	return "", false
}
