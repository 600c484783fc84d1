package secrets

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

const redacted = "[redacted]"

// Key is a provider API key. Every way of printing it (%v, %s, %q, %#v,
// String, JSON, text marshalling) yields "[redacted]"; the only way to the
// key itself is Reveal, so a key cannot slip into a log line or an error by
// accident.
type Key struct {
	v string
}

// NewKey wraps s.
func NewKey(s string) Key { return Key{v: s} }

// Reveal returns the key itself, for the one place that needs it: the
// header the proxy injects upstream (and the key store).
func (k Key) Reveal() string { return k.v }

// IsZero reports whether no key is held.
func (k Key) IsZero() bool { return k.v == "" }

// Fingerprint identifies the key without revealing it: "sha256:" and the
// first 12 hex digits of its SHA-256.
func (k Key) Fingerprint() string {
	if k.v == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(k.v))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

// String implements fmt.Stringer.
func (k Key) String() string { return redacted }

// GoString implements fmt.GoStringer.
func (k Key) GoString() string { return redacted }

// Format implements fmt.Formatter for every verb.
func (k Key) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// ErrMarshal is returned by the marshalling methods of Key.
var ErrMarshal = errors.New("secrets: a key is never marshalled")

// MarshalJSON refuses: a key never goes into an API response or a file.
func (k Key) MarshalJSON() ([]byte, error) { return nil, ErrMarshal }

// MarshalText refuses, for the same reason.
func (k Key) MarshalText() ([]byte, error) { return nil, ErrMarshal }
