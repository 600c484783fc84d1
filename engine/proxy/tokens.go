package proxy

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"sync"
)

// Identity is whom a token was issued to.
type Identity struct {
	// Name is the agent's name, or "user" for the user token.
	Name string `json:"name"`
	// User is true for the user's own token (their trusted tools on the
	// host), which no budget applies to.
	User bool `json:"user,omitempty"`
}

// UserName is the identity name of the user token.
const UserName = "user"

// Token prefixes: user and agent tokens are told apart at a glance, and the
// hex body cannot be mistaken for a provider key.
const (
	userPrefix  = "tsu_"
	agentPrefix = "tsa_"
	tokenBytes  = 32
)

var agentNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,32}$`)

// ErrBadAgentName is returned for a name outside [a-zA-Z0-9_-]{1,32}.
var ErrBadAgentName = errors.New("agent names are 1..32 of a-z A-Z 0-9 _ -")

type entry struct {
	id     Identity
	digest [sha256.Size]byte
}

// Tokens are the use-only credentials the proxy accepts: one user token
// and one per agent, each revocable on its own. Only SHA-256 digests are
// kept; a presented token is compared against every digest in constant
// time, without early exit.
type Tokens struct {
	mu      sync.RWMutex
	entries []entry
}

// NewTokens returns an empty registry.
func NewTokens() *Tokens { return &Tokens{} }

func newToken(prefix string) (string, [sha256.Size]byte, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", [sha256.Size]byte{}, fmt.Errorf("token: %w", err)
	}
	tok := prefix + hex.EncodeToString(b)
	return tok, sha256.Sum256([]byte(tok)), nil
}

// set replaces id's entry (if any) by a new token and returns it.
func (t *Tokens) set(id Identity, prefix string) (string, error) {
	tok, digest, err := newToken(prefix)
	if err != nil {
		return "", err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeLocked(id)
	t.entries = append(t.entries, entry{id: id, digest: digest})
	return tok, nil
}

func (t *Tokens) removeLocked(id Identity) bool {
	for i, e := range t.entries {
		if e.id == id {
			t.entries = append(t.entries[:i], t.entries[i+1:]...)
			return true
		}
	}
	return false
}

// IssueUser issues a new user token, revoking the previous one.
func (t *Tokens) IssueUser() (string, error) {
	return t.set(Identity{Name: UserName, User: true}, userPrefix)
}

// Issue issues a new token for agent, revoking its previous one.
func (t *Tokens) Issue(agent string) (string, error) {
	if !agentNameRE.MatchString(agent) {
		return "", fmt.Errorf("%q: %w", agent, ErrBadAgentName)
	}
	return t.set(Identity{Name: agent}, agentPrefix)
}

// revoke removes agent's token; it reports whether there was one.
func (t *Tokens) revoke(agent string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.removeLocked(Identity{Name: agent})
}

// Agents lists the agents holding a token, sorted.
func (t *Tokens) Agents() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []string
	for _, e := range t.entries {
		if !e.id.User {
			out = append(out, e.id.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Lookup returns the identity holding tok.
func (t *Tokens) Lookup(tok string) (Identity, bool) {
	digest := sha256.Sum256([]byte(tok))
	t.mu.RLock()
	defer t.mu.RUnlock()
	var found Identity
	ok := 0
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(digest[:], e.digest[:]) == 1 {
			found = e.id
			ok = 1
		}
	}
	return found, ok == 1
}
