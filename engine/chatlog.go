package engine

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/chat"
	"github.com/thesystem-dev/thesystem/engine/redact"
	"github.com/thesystem-dev/thesystem/engine/supervise"
)

// chatBacklog is how many of the chat's last messages the engine keeps.
const chatBacklog = 1000

// chatLog is the user's view of the team's chat, which the engine keeps:
// its own connection to the chat server as the user while the chat server
// runs (watchChat), in every channel and, the user being an observer, with
// a copy of every direct message; the last messages for `chat tail`, and
// the followers.
type chatLog struct {
	mu   sync.Mutex
	ring []api.ChatMessage
	subs map[chan api.ChatMessage]struct{}
	conn *chatConn // nil while not connected
}

// chatConn is the user's current connection: who is who in the chat.
type chatConn struct {
	c   *chat.Client
	ids map[string]string          // a name → its id, with the @
	in  map[string]map[string]bool // an id → the channels it is in
	// waiting are the admin requests in flight (ADMIT, REVOKE), by name.
	waiting map[string]chan error
}

// joined records id (name) in channel; the chatLog's mu is held.
func (c *chatConn) joined(id, name, channel string) {
	c.ids[name] = id
	if c.in[id] == nil {
		c.in[id] = map[string]bool{}
	}
	c.in[id][channel] = true
}

func (l *chatLog) add(m api.ChatMessage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) == chatBacklog {
		l.ring = slices.Delete(l.ring, 0, 1)
	}
	l.ring = append(l.ring, m)
	for ch := range l.subs {
		select {
		case ch <- m:
		default: // a follower this far behind is cut off, not waited for
			delete(l.subs, ch)
			close(ch)
		}
	}
}

// present: name is in the chat now.
func (l *chatLog) present(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conn != nil && l.conn.ids[name] != ""
}

// tail is the last n messages.
func (l *chatLog) tail(n int) []api.ChatMessage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ring[max(0, len(l.ring)-n):])
}

// follow is the last n messages and a channel of the next ones.
func (l *chatLog) follow(n int) ([]api.ChatMessage, <-chan api.ChatMessage, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan api.ChatMessage, 256)
	if l.subs == nil {
		l.subs = map[chan api.ChatMessage]struct{}{}
	}
	l.subs[ch] = struct{}{}
	backlog := slices.Clone(l.ring[max(0, len(l.ring)-n):])
	return backlog, ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if _, ok := l.subs[ch]; ok {
			delete(l.subs, ch)
			close(ch)
		}
	}
}

// watchChat keeps the user's connection to the chat server until ctx
// ends (the chat server's run), connecting again when it is lost.
func (e *Engine) watchChat(ctx context.Context, logs *supervise.Logs, channels []string) {
	var last string
	for ctx.Err() == nil {
		err := e.chatSession(ctx, channels)
		if ctx.Err() != nil {
			return
		}
		if msg := fmt.Sprintf("the user's chat connection: %v", err); msg != last {
			last = msg // once per kind of failure, not once a second
			logs.Append(supervise.Line{Component: api.ComponentChat, Stream: "supervisor", Text: msg})
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// chatSession is one connection as the user: it joins channels and
// records what it hears until the connection or ctx ends.
func (e *Engine) chatSession(ctx context.Context, channels []string) error {
	var key ed25519.PrivateKey
	if k := e.chatAdmin.Load(); k != nil {
		key = *k
	}
	cl, err := chat.Dial(ctx, e.chatURL(), chat.DialOptions{Name: userChatName, Key: key})
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	c := &chatConn{c: cl, ids: map[string]string{}, in: map[string]map[string]bool{}, waiting: map[string]chan error{}}
	for _, ch := range channels {
		if err := cl.Join(ctx, ch); err != nil {
			return err
		}
	}
	e.chatView.mu.Lock()
	e.chatView.conn = c
	e.chatView.mu.Unlock()
	defer func() {
		e.chatView.mu.Lock()
		if e.chatView.conn == c {
			e.chatView.conn = nil
		}
		for name, ch := range c.waiting {
			ch <- errors.New("the engine's chat connection was lost")
			delete(c.waiting, name)
		}
		e.chatView.mu.Unlock()
	}()
	for {
		f, err := cl.Read(ctx)
		if err != nil {
			return err
		}
		e.chatView.mu.Lock()
		switch f.Type {
		case chat.TypeJoined:
			for _, a := range f.Agents {
				c.joined(a.ID, a.Name, f.Channel)
			}
		case chat.TypeAgentJoined:
			c.joined(f.Agent, f.Name, f.Channel)
		case chat.TypeAgentLeft:
			delete(c.in[f.Agent], f.Channel)
			if len(c.in[f.Agent]) == 0 {
				delete(c.in, f.Agent)
				if c.ids[f.Name] == f.Agent {
					delete(c.ids, f.Name)
				}
			}
		case chat.TypeAdmitted, chat.TypeRevoked, chat.TypeError:
			if ch, ok := c.waiting[f.Name]; ok && f.Name != "" {
				delete(c.waiting, f.Name)
				if f.Type == chat.TypeError {
					ch <- &chat.RefusedError{Code: f.Code, Message: f.Message}
				} else {
					ch <- nil
				}
			}
		}
		e.chatView.mu.Unlock()
		if f.Type != chat.TypeMsg {
			continue
		}
		m := api.ChatMessage{Time: time.UnixMilli(f.TS), From: f.FromName, To: f.To, Content: f.Content}
		if strings.HasPrefix(f.To, "@") {
			m.Direct, m.To = true, f.ToName
		}
		e.chatView.add(m)
	}
}

// chatAdminRequest asks the chat server, over the engine's connection as
// the user (its admin), to ADMIT name with pub or to REVOKE it, and waits
// for the answer; until ctx ends it waits for a connection too.
func (e *Engine) chatAdminRequest(ctx context.Context, typ, name, pub string) error {
	answer := make(chan error, 1)
	var c *chatConn
	for c == nil {
		e.chatView.mu.Lock()
		if conn := e.chatView.conn; conn != nil && conn.waiting[name] == nil {
			c = conn
			c.waiting[name] = answer
		}
		e.chatView.mu.Unlock()
		if c != nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no connection to the chat server: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	defer func() {
		e.chatView.mu.Lock()
		if c.waiting[name] == answer {
			delete(c.waiting, name)
		}
		e.chatView.mu.Unlock()
	}()
	req := map[string]string{"type": typ, "name": name}
	if pub != "" {
		req["pubkey"] = pub
	}
	if err := c.c.Send(ctx, req); err != nil {
		return err
	}
	select {
	case err := <-answer:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer from the chat server: %w", ctx.Err())
	}
}

// Chat is the chat's last n messages.
func (e *Engine) Chat(n int) []api.ChatMessage { return e.chatView.tail(n) }

// FollowChat is the last n messages and the ones after them.
func (e *Engine) FollowChat(n int) ([]api.ChatMessage, <-chan api.ChatMessage, func()) {
	return e.chatView.follow(n)
}

// ChatSend says content as the user, to a channel (#name) or an agent
// (its name, with or without the @).
func (e *Engine) ChatSend(ctx context.Context, to, content string) error {
	switch {
	case strings.TrimSpace(content) == "":
		return api.Errorf(api.ErrBadRequest, "nothing to say: the message is empty")
	case len(content) > maxChatMessage:
		return api.Errorf(api.ErrBadRequest, fmt.Sprintf("the message is %d bytes; the chat takes up to %d", len(content), maxChatMessage))
	}
	e.chatView.mu.Lock()
	c := e.chatView.conn
	var target string
	if c != nil {
		if strings.HasPrefix(to, "#") {
			target = to
		} else {
			target = c.ids[strings.TrimPrefix(to, "@")]
		}
	}
	e.chatView.mu.Unlock()
	switch {
	case c == nil:
		return api.Errorf(api.ErrNotRunning, "the chat is not running: `thesystem start`")
	case strings.HasPrefix(to, "#") && !slices.Contains(e.opt.Config.Config.Channels, to):
		return api.Errorf(api.ErrNotFound, fmt.Sprintf("no channel %s: the channels are %s (thesystem.yaml channels)", redact.Quote(to), strings.Join(e.opt.Config.Config.Channels, ", ")))
	case target == "":
		return api.Errorf(api.ErrNotFound, fmt.Sprintf("%s is not in the chat (see `thesystem status`)", redact.Quote(to)))
	}
	if err := c.c.Say(ctx, target, content); err != nil {
		return api.Errorf(api.ErrUnavailable, fmt.Sprintf("the chat connection: %v", err))
	}
	return nil
}

// maxChatMessage is the most the chat server takes in one message.
const maxChatMessage = 2 << 20
