package chat

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/thesystem-dev/thesystem/engine/atomicfile"
)

// NewKey makes an Ed25519 identity key.
func NewKey() (ed25519.PrivateKey, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	return k, err
}

// PublicPEM is the PEM (SPKI) form of key's public half, as IDENTIFY
// carries it.
func PublicPEM(key ed25519.PrivateKey) string {
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// PublicText is key's public half in base64, the form an allowlist entry
// takes on a command line (`--allow name=<PublicText>`).
func PublicText(key ed25519.PrivateKey) string {
	return base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
}

// ParsePublicText reads PublicText's form.
func ParsePublicText(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("not a base64 Ed25519 public key")
	}
	return ed25519.PublicKey(b), nil
}

// WriteKey stores key (PKCS #8 PEM) at path with mode and owner uid:gid
// (-1: this process's), atomically.
func WriteKey(path string, key ed25519.PrivateKey, mode os.FileMode, uid, gid int) error {
	b, err := EncodeKey(key)
	if err != nil {
		return err
	}
	return atomicfile.WriteOwned(path, b, mode, uid, gid)
}

// EncodeKey is key as WriteKey stores it (PKCS #8 in PEM).
func EncodeKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ReadKey reads a key WriteKey stored.
func ReadKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chat identity: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("chat identity %s: not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("chat identity %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("chat identity %s: not an Ed25519 key", path)
	}
	return key, nil
}

// LoadOrCreateKey reads the key at path, making one (mode 0600) first when
// there is none.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	key, err := ReadKey(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	if key, err = NewKey(); err != nil {
		return nil, err
	}
	return key, WriteKey(path, key, 0o600, -1, -1)
}

// RefusedError is the server's ERROR answer to an identification.
type RefusedError struct{ Code, Message string }

func (e *RefusedError) Error() string { return "chat refused: " + e.Code + ": " + e.Message }

// Identify identifies ws's client as name: with key (nil: an ephemeral
// identity), it answers the server's CHALLENGE with a signature. It
// returns the agent id WELCOME gives ("@…").
func Identify(ctx context.Context, ws *websocket.Conn, name string, key ed25519.PrivateKey) (string, error) {
	send := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return ws.Write(ctx, websocket.MessageText, b)
	}
	var f Frame
	read := func() error {
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return fmt.Errorf("chat: %w", err)
			}
			f = Frame{}
			if err := json.Unmarshal(b, &f); err != nil {
				return fmt.Errorf("chat: %w", err)
			}
			switch f.Type {
			case TypeWelcome, TypeChallenge:
				return nil
			case TypeError:
				return &RefusedError{Code: f.Code, Message: f.Message}
			}
		}
	}
	hello := map[string]string{"type": TypeIdentify, "name": name}
	if key != nil {
		hello["pubkey"] = PublicPEM(key)
	}
	if err := send(hello); err != nil {
		return "", err
	}
	if err := read(); err != nil {
		return "", err
	}
	if f.Type == TypeChallenge {
		if key == nil {
			return "", errors.New("chat: the server asked an ephemeral identity to prove itself")
		}
		ts := time.Now().UnixMilli()
		sig := ed25519.Sign(key, []byte(AuthSigningContent(f.Nonce, f.ChallengeID, ts)))
		if err := send(map[string]any{"type": TypeVerifyIdentity, "challenge_id": f.ChallengeID,
			"signature": base64.StdEncoding.EncodeToString(sig), "timestamp": ts}); err != nil {
			return "", err
		}
		if err := read(); err != nil {
			return "", err
		}
	}
	if f.Type != TypeWelcome || !strings.HasPrefix(f.AgentID, "@") {
		return "", fmt.Errorf("chat: expected WELCOME, got %s", f.Type)
	}
	return f.AgentID, nil
}
