package chat

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"

	"github.com/coder/websocket"
)

// Dial connects to the chat server at url (ws://…) and identifies as name
// with key (nil: an ephemeral identity). It returns the connection and
// the id WELCOME gave ("@…").
func Dial(ctx context.Context, url, name string, key ed25519.PrivateKey) (*websocket.Conn, string, error) {
	ws, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, "", fmt.Errorf("chat %s: %w", url, err)
	}
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	ws.SetReadLimit(4 << 20)
	id, err := Identify(ctx, ws, name, key)
	if err != nil {
		_ = ws.CloseNow()
		return nil, "", err
	}
	return ws, id, nil
}

// Admit lets name in with the public key pub (PublicText's form) and drops
// a connection of that name that holds another key; ws must be identified
// as one of the server's admins.
func Admit(ctx context.Context, ws *websocket.Conn, name, pub string) error {
	return adminRequest(ctx, ws, map[string]string{"type": TypeAdmit, "name": name, "pubkey": pub}, TypeAdmitted)
}

// Revoke shuts name out and drops its connections; ws must be identified
// as one of the server's admins.
func Revoke(ctx context.Context, ws *websocket.Conn, name string) error {
	return adminRequest(ctx, ws, map[string]string{"type": TypeRevoke, "name": name}, TypeRevoked)
}

// adminRequest sends req and waits for its answer (want, for req's name)
// or an ERROR, passing over whatever else the server sends meanwhile.
func adminRequest(ctx context.Context, ws *websocket.Conn, req map[string]string, want string) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("chat: %w", err)
	}
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return fmt.Errorf("chat: %s %s: %w", req["type"], req["name"], err)
		}
		var f struct{ Type, Name, Code, Message string }
		if json.Unmarshal(b, &f) != nil {
			continue
		}
		switch {
		case f.Type == TypeError:
			return &RefusedError{Code: f.Code, Message: f.Message}
		case f.Type == want && f.Name == req["name"]:
			return nil
		}
	}
}
