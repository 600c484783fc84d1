// Package provider is the registry of model providers the key proxy fronts:
// each one's name and aliases, default upstream, how its key is sent, and
// what its keys look like. It is pure data, shared by the proxy, the config
// validation and the CLI.
package provider

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/thesystem-dev/thesystem/engine/redact"
)

// AuthStyle is how a provider expects its key.
type AuthStyle string

// Auth styles.
const (
	AuthXAPIKey     AuthStyle = "x-api-key"      // Anthropic
	AuthBearer      AuthStyle = "bearer"         // Authorization: Bearer <key>
	AuthXGoogAPIKey AuthStyle = "x-goog-api-key" // Google
)

// Provider describes one upstream API.
type Provider struct {
	Name    string    `json:"name"`
	Aliases []string  `json:"aliases,omitempty"`
	BaseURL string    `json:"upstream"`
	Auth    AuthStyle `json:"auth"`
	// KeyPrefixes are the prefixes its keys start with; empty when the
	// provider's keys have no fixed form.
	KeyPrefixes []string `json:"-"`
	// EnvPrefix is the prefix of the env vars clients read, e.g. ANTHROPIC
	// for ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY.
	EnvPrefix string `json:"-"`
}

// All returns the registry, sorted by name.
func All() []Provider {
	return []Provider{
		{Name: "anthropic", BaseURL: "https://api.anthropic.com", Auth: AuthXAPIKey, KeyPrefixes: []string{"sk-ant-"}, EnvPrefix: "ANTHROPIC"},
		{Name: "deepseek", BaseURL: "https://api.deepseek.com", Auth: AuthBearer, KeyPrefixes: []string{"sk-"}, EnvPrefix: "DEEPSEEK"},
		{Name: "google", Aliases: []string{"gemini"}, BaseURL: "https://generativelanguage.googleapis.com", Auth: AuthXGoogAPIKey, KeyPrefixes: []string{"AIza"}, EnvPrefix: "GOOGLE"},
		{Name: "groq", BaseURL: "https://api.groq.com/openai", Auth: AuthBearer, KeyPrefixes: []string{"gsk_"}, EnvPrefix: "GROQ"},
		{Name: "mistral", BaseURL: "https://api.mistral.ai", Auth: AuthBearer, EnvPrefix: "MISTRAL"},
		{Name: "openai", BaseURL: "https://api.openai.com", Auth: AuthBearer, KeyPrefixes: []string{"sk-"}, EnvPrefix: "OPENAI"},
		{Name: "xai", Aliases: []string{"grok"}, BaseURL: "https://api.x.ai", Auth: AuthBearer, KeyPrefixes: []string{"xai-"}, EnvPrefix: "XAI"},
	}
}

// Names returns every accepted name, canonical names and aliases, sorted.
func Names() []string {
	var out []string
	for _, p := range All() {
		out = append(out, p.Name)
		out = append(out, p.Aliases...)
	}
	sort.Strings(out)
	return out
}

// Lookup finds a provider by name or alias.
func Lookup(name string) (Provider, bool) {
	for _, p := range All() {
		if p.Name == name {
			return p, true
		}
		for _, a := range p.Aliases {
			if a == name {
				return p, true
			}
		}
	}
	return Provider{}, false
}

// Parse is Lookup with an error that lists the known names.
func Parse(name string) (Provider, error) {
	if p, ok := Lookup(name); ok {
		return p, nil
	}
	return Provider{}, fmt.Errorf("unknown provider %s (one of: %s)", redact.Quote(name), strings.Join(Names(), ", "))
}

// Key length bounds: anything outside is a paste accident, not a key.
const (
	minKeyLen = 20
	maxKeyLen = 512
)

// CheckKey checks that key has the shape of one of p's keys. The error
// never repeats the key.
func (p Provider) CheckKey(key string) error {
	switch {
	case len(key) < minKeyLen || len(key) > maxKeyLen:
		return fmt.Errorf("a %s key is %d..%d characters, this one has %d", p.Name, minKeyLen, maxKeyLen, len(key))
	case strings.IndexFunc(key, func(r rune) bool { return r <= ' ' || r > '~' || r == '"' || r == '\'' || r == '\\' }) >= 0:
		return fmt.Errorf("the %s key contains spaces, quotes or non-ASCII characters; paste only the key", p.Name)
	case strings.HasPrefix(key, "tsu_") || strings.HasPrefix(key, "tsa_"):
		return errors.New("this is one of TheSystem's own proxy tokens, not a provider's key: paste the key the provider gave you")
	case p.Name != "anthropic" && strings.HasPrefix(key, "sk-ant-"):
		return fmt.Errorf("this is an Anthropic key, not a %s one: store it with `thesystem keys set anthropic`", p.Name)
	}
	if len(p.KeyPrefixes) == 0 {
		return nil
	}
	for _, pre := range p.KeyPrefixes {
		if strings.HasPrefix(key, pre) {
			return nil
		}
	}
	return fmt.Errorf("%s keys start with %s; this one does not (is it another provider's key?)", p.Name, strings.Join(p.KeyPrefixes, " or "))
}
