package secrets

import (
	"context"
	"errors"
)

// DefaultService is the service name keys are stored under: in the macOS
// Keychain as generic passwords (service "thesystem", account = provider),
// in the Secret Service as items with the attributes service=thesystem,
// account=<provider> (so `secret-tool lookup service thesystem account
// anthropic` finds them).
const DefaultService = "thesystem"

// Store is the OS key store. Implementations: the macOS Keychain
// (go-keychain, cgo), /usr/bin/security (darwin without cgo), the Secret
// Service (Linux). There is deliberately no file or env-var backend.
type Store interface {
	// Get returns the key for provider, or an error wrapping ErrNotFound.
	Get(ctx context.Context, provider string) (Key, error)
	// Set stores key for provider, replacing any previous one.
	Set(ctx context.Context, provider string, key Key) error
	// Delete removes the key for provider, or returns ErrNotFound.
	Delete(ctx context.Context, provider string) error
	// List returns the providers that have a key, sorted.
	List(ctx context.Context) ([]string, error)
}

// Errors.
var (
	ErrNotFound    = errors.New("no key stored")
	ErrUnavailable = errors.New("key store unavailable")
)

// Open opens the platform's key store under service (DefaultService in
// production; tests use their own name so they never touch real keys).
func Open(ctx context.Context, service string) (Store, error) {
	if service == "" {
		service = DefaultService
	}
	return openPlatform(ctx, service)
}

// LoadAll reads every stored key, for the proxy's start.
func LoadAll(ctx context.Context, s Store) (map[string]Key, error) {
	names, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	keys := make(map[string]Key, len(names))
	for _, n := range names {
		k, err := s.Get(ctx, n)
		if errors.Is(err, ErrNotFound) {
			continue // deleted between List and Get
		}
		if err != nil {
			return nil, err
		}
		keys[n] = k
	}
	return keys, nil
}
