package chat

import (
	"context"
	"crypto/ed25519"
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
