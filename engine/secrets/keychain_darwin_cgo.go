//go:build darwin && cgo

package secrets

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/keybase/go-keychain"
)

// keychainStore keeps keys as generic passwords in the user's login
// Keychain (service = "thesystem", account = provider).
type keychainStore struct {
	service string
}

func openPlatform(_ context.Context, service string) (Store, error) {
	return &keychainStore{service: service}, nil
}

func (s *keychainStore) Get(ctx context.Context, provider string) (Key, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, err
	}
	b, err := keychain.GetGenericPassword(s.service, provider, "", "")
	if err != nil {
		return Key{}, fmt.Errorf("keychain: %w", err)
	}
	if b == nil {
		return Key{}, fmt.Errorf("%s: %w", provider, ErrNotFound)
	}
	return NewKey(string(b)), nil
}

func (s *keychainStore) Set(ctx context.Context, provider string, key Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	item := keychain.NewGenericPassword(s.service, provider, "TheSystem: "+provider+" API key", []byte(key.Reveal()), "")
	item.SetAccessible(keychain.AccessibleWhenUnlocked)
	err := keychain.AddItem(item)
	if errors.Is(err, keychain.ErrorDuplicateItem) {
		query := keychain.NewItem()
		query.SetSecClass(keychain.SecClassGenericPassword)
		query.SetService(s.service)
		query.SetAccount(provider)
		update := keychain.NewItem()
		update.SetData([]byte(key.Reveal()))
		err = keychain.UpdateItem(query, update)
	}
	if err != nil {
		return fmt.Errorf("keychain: store: %w", err)
	}
	return nil
}

func (s *keychainStore) Delete(ctx context.Context, provider string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := keychain.DeleteGenericPasswordItem(s.service, provider)
	if errors.Is(err, keychain.ErrorItemNotFound) {
		return fmt.Errorf("%s: %w", provider, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("keychain: delete: %w", err)
	}
	return nil
}

func (s *keychainStore) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	accts, err := keychain.GetGenericPasswordAccounts(s.service)
	if err != nil && !errors.Is(err, keychain.ErrorItemNotFound) {
		return nil, fmt.Errorf("keychain: %w", err)
	}
	sort.Strings(accts)
	return accts, nil
}
