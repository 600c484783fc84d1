package proxy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/thesystem-dev/thesystem/engine/secrets"
)

// memStore is a key store in memory: the OS's is tested in engine/secrets
// and by the process tests; here only what Host does with one matters.
type memStore struct {
	mu   sync.Mutex
	keys map[string]secrets.Key
	fail error
}

func (m *memStore) Get(_ context.Context, p string) (secrets.Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return secrets.Key{}, m.fail
	}
	k, ok := m.keys[p]
	if !ok {
		return secrets.Key{}, fmt.Errorf("%s: %w", p, secrets.ErrNotFound)
	}
	return k, nil
}

func (m *memStore) Set(_ context.Context, p string, k secrets.Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys[p] = k
	return nil
}

func (m *memStore) Delete(_ context.Context, p string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.keys, p)
	return nil
}

func (m *memStore) List(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	var out []string
	for p := range m.keys {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// TestHost: Begin loads the keys and writes a fresh user token (0600);
// Reload is how a changed store reaches the proxy, and a store that fails
// keeps the keys it had; End removes the token; the audit log is 0600 in
// a 0700 dir.
func TestHost(t *testing.T) {
	dir := t.TempDir()
	store := &memStore{keys: map[string]secrets.Key{"anthropic": secrets.NewKey("sk-ant-api03-" + strings.Repeat("a", 40))}}
	tokenFile := filepath.Join(dir, "state", "user-token")
	audit := filepath.Join(dir, "logs", "audit.jsonl")
	h, err := NewHost(Options{}, func(context.Context) (secrets.Store, error) { return store, nil }, tokenFile, audit)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Begin(t.Context()); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(tokenFile)
	if fi, _ := os.Stat(tokenFile); err != nil || !strings.HasPrefix(string(first), "tsu_") || fi.Mode().Perm() != 0o600 {
		t.Fatalf("user token %q (%v)", first, err)
	}
	if got := h.Backends(); !slices.Equal(got, []string{"anthropic"}) {
		t.Errorf("backends %v", got)
	}

	_ = store.Set(t.Context(), "openai", secrets.NewKey("sk-proj-"+strings.Repeat("b", 40)))
	if err := h.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := h.Backends(); !slices.Equal(got, []string{"anthropic", "openai"}) {
		t.Errorf("after a reload: %v", got)
	}
	store.fail = errors.New("the keyring is locked")
	if err := h.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), "the keyring is locked") {
		t.Errorf("a failing store: %v", err)
	}
	if got := h.Backends(); len(got) != 2 {
		t.Errorf("a failed reload dropped keys: %v", got)
	}
	store.fail = nil

	if err := h.Begin(t.Context()); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(tokenFile); string(again) == string(first) {
		t.Error("a new Begin kept the old user token")
	}
	h.End()
	if _, err := os.Stat(tokenFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the token file after End: %v", err)
	}

	if _, err := h.opt.Audit.Write([]byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(audit)
	di, _ := os.Stat(filepath.Dir(audit))
	if err != nil || fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Errorf("audit log %v (dir %v): %v", fi.Mode(), di.Mode(), err)
	}
}
