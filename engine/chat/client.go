package chat

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"

	"github.com/coder/websocket"
)

// Frame is a frame of the protocol as a client reads it: each type uses
// some of the fields.
type Frame struct {
	Type string `json:"type"`
	TS   int64  `json:"ts,omitempty"`
	// WELCOME
	AgentID  string `json:"agent_id,omitempty"`
	Verified bool   `json:"verified,omitempty"`
	// CHALLENGE
	ChallengeID string `json:"challenge_id,omitempty"`
	Nonce       string `json:"nonce,omitempty"`
	// ERROR (Name: the name an admin request was about)
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// JOINED, AGENT_JOINED, AGENT_LEFT, ADMITTED, REVOKED, WELCOME
	Channel string     `json:"channel,omitempty"`
	Agent   string     `json:"agent,omitempty"`
	Name    string     `json:"name,omitempty"`
	Agents  []AgentRef `json:"agents,omitempty"`
	// MSG
	From     string `json:"from,omitempty"`
	FromName string `json:"from_name,omitempty"`
	To       string `json:"to,omitempty"`
	ToName   string `json:"to_name,omitempty"`
	Content  string `json:"content,omitempty"`
	MsgID    string `json:"msg_id,omitempty"`
	// CHANNELS ([]ChannelInfo) and AGENTS ([]AgentRef)
	List json.RawMessage `json:"list,omitempty"`
	// STATUS (with From, FromName)
	State  string `json:"state,omitempty"`
	Task   string `json:"task,omitempty"`
	Queued int    `json:"queued,omitempty"`
}

// Channels is a CHANNELS frame's list.
func (f Frame) Channels() []ChannelInfo {
	var list []ChannelInfo
	_ = json.Unmarshal(f.List, &list)
	return list
}

// Client is a connection to a chat server, identified.
type Client struct {
	ws *websocket.Conn
	// ID is the id WELCOME gave ("@…").
	ID string
}

// DialOptions say how to reach the server and as whom.
type DialOptions struct {
	// Socket, when set, is a unix socket to reach the server through (the
	// URL then only names the Host the server checks).
	Socket string
	// Name is the name to identify as; Key proves it (nil: an ephemeral
	// identity).
	Name string
	Key  ed25519.PrivateKey
	// TLS verifies a wss:// server (nil: the system's roots).
	TLS *tls.Config
}

// Dial connects to the chat server at url (ws://…) and identifies.
func Dial(ctx context.Context, url string, opt DialOptions) (*Client, error) {
	var wo *websocket.DialOptions
	if opt.TLS != nil {
		wo = &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: opt.TLS}}}
	}
	if opt.Socket != "" {
		sock := opt.Socket
		wo = &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			}}}}
	}
	ws, resp, err := websocket.Dial(ctx, url, wo)
	if err != nil {
		return nil, fmt.Errorf("chat %s: %w", url, err)
	}
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	// A message's content is up to maxContent, which JSON's escapes
	// (\u0000: 6 bytes a byte) can make six times as long on the wire.
	ws.SetReadLimit(6*maxContent + 64<<10)
	id, err := Identify(ctx, ws, opt.Name, opt.Key)
	if err != nil {
		_ = ws.CloseNow()
		return nil, err
	}
	return &Client{ws: ws, ID: id}, nil
}

// Send sends one frame (any value that marshals to one). It is safe to
// call from several goroutines. A context that has already ended sends
// nothing and leaves the connection open (the websocket closes a
// connection whose write's context ends, and would at random when it has
// ended before the write began).
func (c *Client) Send(ctx context.Context, v any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// Join joins a channel.
func (c *Client) Join(ctx context.Context, channel string) error {
	return c.Send(ctx, map[string]string{"type": TypeJoin, "channel": channel})
}

// Say sends content to a channel (#name) or an agent (@id).
func (c *Client) Say(ctx context.Context, to, content string) error {
	return c.Send(ctx, map[string]string{"type": TypeMsg, "to": to, "content": content})
}

// Status says what this client is doing: the observers (the user, the
// dashboard) get it.
func (c *Client) Status(ctx context.Context, state, task string, queued int) error {
	return c.Send(ctx, map[string]any{"type": TypeStatus, "state": state, "task": task, "queued": queued})
}

// Read reads the next frame; one that is not JSON is skipped.
func (c *Client) Read(ctx context.Context) (Frame, error) {
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			return Frame{}, err
		}
		var f Frame
		if json.Unmarshal(b, &f) == nil {
			return f, nil
		}
	}
}

// Close closes the connection at once.
func (c *Client) Close() error { return c.ws.CloseNow() }
