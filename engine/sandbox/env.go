// Package sandbox is the container tier: the environment that may cross
// into a VM or a container, the in-container init, and (with podman) the
// agent containers themselves.
package sandbox

import (
	"slices"
	"sort"
	"strings"

	"github.com/thesystem-dev/thesystem/engine/secrets"
)

// forwardPrefixes are the only variables that may cross into the VM or a
// container.
func forwardPrefixes() []string {
	return []string{"ANTHROPIC_", "THESYSTEM_", "AGENTCHAT_", "CLAUDE_CODE_"}
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

// secretSuffixes catch secrets the list does not name.
func secretSuffixes() []string {
	return []string{"_API_KEY", "_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_CREDENTIALS"}
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
		allowed := false
		for _, p := range forwardPrefixes() {
			if strings.HasPrefix(name, p) {
				allowed = true
			}
		}
		if !allowed {
			continue // not ours to forward; not worth reporting
		}
		switch {
		case slices.Contains(secretNames(), name):
			dropped = append(dropped, Dropped{name, "a secret's name"})
			continue
		case hasSecretSuffix(name):
			dropped = append(dropped, Dropped{name, "named like a secret"})
			continue
		}
		if kind, bad := secrets.LooksLikeKey(value); bad {
			dropped = append(dropped, Dropped{name, "its value looks like a " + kind})
			continue
		}
		kept = append(kept, kv)
	}
	sort.Strings(kept)
	return kept, dropped
}

func hasSecretSuffix(name string) bool {
	for _, s := range secretSuffixes() {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}
