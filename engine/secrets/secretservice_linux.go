package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/keybase/dbus"
	ss "github.com/keybase/go-keychain/secretservice"
)

// secretService stores keys in the freedesktop Secret Service
// (gnome-keyring, KWallet) over D-Bus, with an encrypted (DH-AES) session.
type secretService struct {
	service string

	mu      sync.Mutex // the library's session is not safe for concurrent use
	srv     *ss.SecretService
	session *ss.Session
}

func openPlatform(_ context.Context, service string) (Store, error) {
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		return nil, fmt.Errorf("%w: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset); "+
			"log in to a desktop session, or on a headless machine run under "+
			"`dbus-run-session` with `gnome-keyring-daemon --unlock` started", ErrUnavailable)
	}
	srv, err := ss.NewService()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	session, err := srv.OpenSession(ss.AuthenticationDHAES)
	if err != nil {
		return nil, fmt.Errorf("%w: no Secret Service on the session bus (is gnome-keyring running?): %w", ErrUnavailable, err)
	}
	return &secretService{service: service, srv: srv, session: session}, nil
}

// withSession runs f, and again over a new session when the service and
// this end disagreed on the session's key: the library derives it from
// the Diffie-Hellman secret without its leading zero bytes, which the
// service keeps, so about one session in 256 encrypts in a way the other
// side cannot read ("The secret was transferred or encrypted in an
// invalid way", or a padding error here). A new session has a new secret.
// s.mu is held.
func (s *secretService) withSession(f func() error) error {
	err := f()
	for try := 0; err != nil && sessionKeyMismatch(err) && try < 3; try++ {
		session, oerr := s.srv.OpenSession(ss.AuthenticationDHAES)
		if oerr != nil {
			return errors.Join(err, oerr)
		}
		s.session = session
		err = f()
	}
	return err
}

// sessionKeyMismatch: err is what a session whose two ends derived
// different keys gives.
func sessionKeyMismatch(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "encrypted in an invalid way") || strings.Contains(msg, "pkcs7") ||
		strings.Contains(msg, "pad") || strings.Contains(msg, "could not decrypt")
}

func (s *secretService) attrs(provider string) ss.Attributes {
	return ss.Attributes{"service": s.service, "account": provider}
}

// collection is the service's default collection (its "default" alias:
// gnome-keyring's login keyring, KWallet's own), "" when it has none: a
// new account, a headless session, KDE without gnome-keyring's login
// keyring. s.mu is held.
func (s *secretService) collection() (dbus.ObjectPath, error) {
	var path dbus.ObjectPath
	if err := s.srv.ServiceObj().Call("org.freedesktop.Secret.Service.ReadAlias", ss.NilFlags, "default").Store(&path); err != nil {
		return "", fmt.Errorf("secret service: the default keyring: %w", err)
	}
	if path == "/" {
		return "", nil
	}
	return path, nil
}

// createCollection makes a default collection, through the service's
// own prompt for its password (a desktop's); s.mu is held.
func (s *secretService) createCollection() (dbus.ObjectPath, error) {
	props := map[string]dbus.Variant{"org.freedesktop.Secret.Collection.Label": dbus.MakeVariant("Default keyring")}
	var coll, prompt dbus.ObjectPath
	err := s.srv.ServiceObj().Call("org.freedesktop.Secret.Service.CreateCollection", ss.NilFlags, props, "default").Store(&coll, &prompt)
	if err == nil && coll == "/" {
		var v *dbus.Variant
		if v, err = s.srv.PromptAndWait(prompt); err == nil && v != nil {
			coll, _ = v.Value().(dbus.ObjectPath)
		}
	}
	if err == nil && (coll == "" || coll == "/") {
		err = errors.New("no collection was made")
	}
	if err != nil {
		return "", fmt.Errorf("%w: the Secret Service has no default keyring and could not make one (%w): it asks for the new keyring's password "+
			"on the desktop; without one, start gnome-keyring with a password on stdin (`gnome-keyring-daemon --unlock`), "+
			"or create the keyring in Seahorse (Passwords and Keys) or KWalletManager", ErrUnavailable, err)
	}
	return coll, nil
}

func (s *secretService) find(provider string) ([]dbus.ObjectPath, error) {
	coll, err := s.collection()
	if err != nil || coll == "" {
		return nil, err // no default keyring: no key
	}
	items, err := s.srv.SearchCollection(coll, s.attrs(provider))
	if err != nil {
		return nil, fmt.Errorf("secret service: %w", err)
	}
	return items, nil
}

func (s *secretService) Get(ctx context.Context, provider string) (Key, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	items, err := s.find(provider)
	if err != nil {
		return Key{}, err
	}
	if len(items) == 0 {
		return Key{}, fmt.Errorf("%s: %w", provider, ErrNotFound)
	}
	if err := s.srv.Unlock(items); err != nil {
		return Key{}, fmt.Errorf("secret service: unlock: %w", err)
	}
	var b []byte
	err = s.withSession(func() error {
		var err error
		if b, err = s.srv.GetSecret(items[0], *s.session); err == nil && b == nil {
			err = errors.New("could not decrypt the stored key")
		}
		return err
	})
	if err != nil {
		return Key{}, fmt.Errorf("secret service: %w", err)
	}
	return NewKey(string(b)), nil
}

func (s *secretService) Set(ctx context.Context, provider string, key Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	coll, err := s.collection()
	if err != nil {
		return err
	}
	if coll == "" {
		if coll, err = s.createCollection(); err != nil {
			return err
		}
	}
	if err := s.srv.Unlock([]dbus.ObjectPath{coll}); err != nil {
		return fmt.Errorf("secret service: unlock the default keyring: %w", err)
	}
	props := ss.NewSecretProperties("TheSystem: "+provider+" API key", s.attrs(provider))
	err = s.withSession(func() error {
		secret, err := s.session.NewSecret([]byte(key.Reveal()))
		if err != nil {
			return err
		}
		_, err = s.srv.CreateItem(coll, props, secret, ss.ReplaceBehaviorReplace)
		return err
	})
	if err != nil {
		return fmt.Errorf("secret service: store: %w", err)
	}
	return nil
}

func (s *secretService) Delete(ctx context.Context, provider string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	items, err := s.find(provider)
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return fmt.Errorf("%s: %w", provider, ErrNotFound)
	}
	for _, it := range items {
		if err := s.srv.DeleteItem(it); err != nil {
			return fmt.Errorf("secret service: delete: %w", err)
		}
	}
	return nil
}

func (s *secretService) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	coll, err := s.collection()
	if err != nil || coll == "" {
		return nil, err // no default keyring: no keys
	}
	items, err := s.srv.SearchCollection(coll, ss.Attributes{"service": s.service})
	if err != nil {
		return nil, fmt.Errorf("secret service: %w", err)
	}
	seen := map[string]bool{}
	for _, it := range items {
		a, err := s.srv.GetAttributes(it)
		if err != nil {
			return nil, fmt.Errorf("secret service: %w", err)
		}
		if acct := a["account"]; acct != "" {
			seen[acct] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}
