// Package sandbox is the host's side of the container tier: the
// environment that may cross into a VM or a container, podman (its
// service's environment, its bindings), the containers' specs (user
// namespace, mounts, limits), the images and the container runner.
package sandbox

import (
	"slices"
	"sort"
	"strings"

	"github.com/thesystem-dev/thesystem/engine/secrets"
)

// forwardPrefixes are the only variables that may cross into the VM or a
// container: the runtime's and the chat's settings, and THESYSTEM_AGENT_*
// for the user's own; never the engine's own THESYSTEM_* settings, which
// describe the host (its paths, its podman's flags).
func forwardPrefixes() []string {
	return []string{"ANTHROPIC_", "THESYSTEM_AGENT_", "AGENTCHAT_", "CLAUDE_CODE_"}
}

// secretNames never cross, whatever their prefix.
func secretNames() []string {
	return []string{
		"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN",
		"GITHUB_TOKEN", "GITHUB_TOKEN_BEARER", "GH_TOKEN", "XAI_API_KEY", "GROK_API_KEY",
		"GOOGLE_API_KEY", "GEMINI_API_KEY", "MISTRAL_API_KEY", "GROQ_API_KEY", "DEEPSEEK_API_KEY",
		"AGENTAUTH_TOKEN",
	}
}

// secretWords in a name (any case) mark it a secret's: a key, a token, a
// password, a cookie, credentials, auth headers (ANTHROPIC_CUSTOM_HEADERS
// may carry a bearer token).
func secretWords() []string {
	return []string{"KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE", "COOKIE", "AUTH", "HEADERS"}
}

// safeNames have a secret word in their name but hold none.
func safeNames() []string {
	return []string{"CLAUDE_CODE_MAX_OUTPUT_TOKENS", "CLAUDE_CODE_MAX_THINKING_TOKENS"}
}

// Dropped is a variable that was held back, and why; never its value.
type Dropped struct {
	Name   string
	Reason string
}

// ForwardEnv filters an environment (KEY=VALUE entries) to what may enter
// the VM or a container: names with an allowed prefix, minus secret names,
// minus any value that looks like a provider key. It returns the kept
// entries, sorted, and what it held back.
func ForwardEnv(environ []string) (kept []string, dropped []Dropped) {
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			continue
		}
		upper := strings.ToUpper(name)
		if !slices.ContainsFunc(forwardPrefixes(), func(p string) bool { return strings.HasPrefix(upper, p) }) {
			continue // not ours to forward; not worth reporting
		}
		if why := secretValue(upper, value); why != "" {
			dropped = append(dropped, Dropped{name, why})
			continue
		}
		kept = append(kept, kv)
	}
	sort.Strings(kept)
	return kept, dropped
}

// secretValue says why the variable (its name upper-cased) holds or may
// hold a secret, or "".
func secretValue(name, value string) string {
	switch {
	case slices.Contains(secretNames(), name):
		return "a secret's name"
	case !slices.Contains(safeNames(), name) && slices.ContainsFunc(secretWords(), func(w string) bool { return strings.Contains(name, w) }):
		return "named like a secret"
	case strings.Contains(value, "-----BEGIN") && strings.Contains(value, "PRIVATE KEY"):
		return "its value holds a private key"
	case hasUserinfo(value):
		return "its value is a URL with credentials"
	}
	if kind, bad := secrets.LooksLikeKey(value); bad {
		return "its value looks like a " + kind
	}
	return ""
}

// hasUserinfo reports a URL with credentials (scheme://user:pass@host)
// anywhere in s.
func hasUserinfo(s string) bool {
	for rest := s; ; {
		i := strings.Index(rest, "://")
		if i < 0 {
			return false
		}
		rest = rest[i+3:]
		end := strings.IndexAny(rest, "/?# \t\n")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndexByte(rest[:end], '@'); at > 0 {
			return true
		}
	}
}
