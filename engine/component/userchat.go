package component

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/thesystem-dev/thesystem/engine/chat"
	"github.com/thesystem-dev/thesystem/engine/redact"
)

// quietFor is how long the user's connection may fail before it is
// worth a line in the chat server's log.
const quietFor = 10 * time.Second

// chatBacklog is how many of the chat's last messages the engine keeps.
const chatBacklog = 1000

// Message is a message of the team's chat, as the user hears it: To is
// the channel, or for a direct message the name of the agent it went to.
type Message struct {
	Time    time.Time
	From    string
	To      string
	Direct  bool
	Content string
}

// Activity is what an agent says it is doing (its STATUS).
type Activity struct {
	State  string // idle, working
	Task   string // the task's first line, while working
	Queued int    // tasks waiting behind it
	Since  time.Time
}

// UserChat is the user's view of the team's chat, which the engine keeps:
// its own connection to the chat server as the user while the chat server
// runs (Watch), in every channel and, the user being an observer, with a
// copy of every direct message; the last messages for `chat tail`, and
// the followers. The same connection says what the user says (Send) and,
// the user being the server's admin, admits and revokes the agents' keys.
type UserChat struct {
	// URL is the chat server as the host reaches it (through Socket, a
	// unix socket, when set); Channels are joined.
	URL      string
	Socket   string
	Channels []string
	// Key returns the user's chat key; nil: an open server, no allowlist.
	Key func() ed25519.PrivateKey
	// Note receives the connection's troubles, once per kind.
	Note func(string)
	// Changed is called (with no lock held of the chat's) when an agent
	// says it does something else; it must not block.
	Changed func()
	// History is the file that keeps the messages across the engine's
	// restarts (LoadHistory reads it back); "": none.
	History string

	mu   sync.Mutex
	hist *chatHistory
	ring []Message
	work map[string]Activity   // an agent's name → what it said it does
	subs map[chan Message]bool // a follower → it gets the asides too
	// asks are the engine's own questions to an agent (AskAgent: /diff,
	// /files, /bundle) waiting for their answer, by agent: the question
	// and its answer are asides, kept out of the chat's tail and history.
	asks map[string][]*ask
	conn *chatConn // nil while not connected
	lost error     // why the last connection ended or failed
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

func (l *UserChat) add(m Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	aside := l.aside(m)
	if !aside {
		if len(l.ring) == chatBacklog {
			l.ring = slices.Delete(l.ring, 0, 1)
		}
		l.ring = append(l.ring, m)
		if l.hist != nil {
			l.hist.add(m)
		}
	}
	for ch, all := range l.subs {
		if aside && !all {
			continue
		}
		select {
		case ch <- m:
		default: // a follower this far behind is cut off, not waited for
			delete(l.subs, ch)
			close(ch)
		}
	}
}

// ask is one of the engine's questions to an agent: done once both its
// echo (the server's copy to the user) and its answer have come, in either
// order.
type ask struct {
	text             string
	echoed, answered bool
}

// aside: m is one of the engine's asks (as the server echoes it to the
// user) or the answer to one; an ask whose echo and answer have both come
// is taken off the list. l.mu is held.
func (l *UserChat) aside(m Message) bool {
	if !m.Direct {
		return false
	}
	agent := m.From
	if m.From == UserChatName {
		agent = m.To
	}
	asks := l.asks[agent]
	i := slices.IndexFunc(asks, func(q *ask) bool {
		if m.From == UserChatName {
			return !q.echoed && q.text == m.Content
		}
		return !q.answered && m.To == UserChatName && !strings.HasPrefix(m.Content, "⋯ ")
	})
	if i < 0 {
		return false
	}
	if m.From == UserChatName {
		asks[i].echoed = true
	} else {
		asks[i].answered = true
	}
	if asks[i].echoed && asks[i].answered {
		l.asks[agent] = slices.Delete(asks, i, i+1)
	}
	return true
}

// LoadHistory reads the last messages of the History file back, and keeps
// every new one there from now on; damaged says how many lines it could not
// read (skipped).
func (l *UserChat) LoadHistory() (damaged int, err error) {
	if l.History == "" {
		return 0, nil
	}
	h := &chatHistory{path: l.History}
	old, damaged, err := h.load(chatBacklog)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hist = h
	l.ring = append(old, l.ring...)
	l.ring = l.ring[max(0, len(l.ring)-chatBacklog):]
	return damaged, err
}

// Present: name is in the chat now.
func (l *UserChat) Present(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conn != nil && l.conn.ids[name] != ""
}

// Activity is what the agent last said it does, while it is in the chat.
func (l *UserChat) Activity(name string) (Activity, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil || l.conn.ids[name] == "" {
		return Activity{}, false
	}
	a, ok := l.work[name]
	return a, ok
}

// AskAgent says text to the agent directly, as the user, and waits for
// its direct answer (not a progress line) until ctx ends.
func (l *UserChat) AskAgent(ctx context.Context, agent, text string) (string, error) {
	_, ch, stop := l.follow(0, true)
	defer stop()
	q := &ask{text: text}
	l.mu.Lock()
	if l.asks == nil {
		l.asks = map[string][]*ask{}
	}
	l.asks[agent] = append(l.asks[agent], q)
	l.mu.Unlock()
	defer func() { // unanswered (its echo may still come after an answer)
		l.mu.Lock()
		if !q.answered && l.asks != nil {
			l.asks[agent] = slices.DeleteFunc(l.asks[agent], func(p *ask) bool { return p == q })
		}
		l.mu.Unlock()
	}()
	if err := l.Send(ctx, agent, text); err != nil {
		return "", err
	}
	for {
		select {
		case <-ctx.Done():
			return "", &Error{Unavailable, fmt.Sprintf("%s did not answer %s in time (busy with a task? `thesystem agents list`)", agent, text)}
		case m, ok := <-ch:
			if !ok {
				return "", &Error{Unavailable, "the chat connection was lost"}
			}
			if m.Direct && m.From == agent && m.To == UserChatName && !strings.HasPrefix(m.Content, "⋯ ") {
				return m.Content, nil
			}
		}
	}
}

// Tail is the last n messages.
func (l *UserChat) Tail(n int) []Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ring[max(0, len(l.ring)-n):])
}

// Follow is the last n messages and a channel of the next ones (not the
// engine's asides).
func (l *UserChat) Follow(n int) ([]Message, <-chan Message, func()) {
	return l.follow(n, false)
}

// follow is Follow, with the asides too when all.
func (l *UserChat) follow(n int, all bool) ([]Message, <-chan Message, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan Message, 256)
	if l.subs == nil {
		l.subs = map[chan Message]bool{}
	}
	l.subs[ch] = all
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

// Watch keeps the user's connection to the chat server until ctx ends
// (the chat server's run), connecting again when it is lost.
func (l *UserChat) Watch(ctx context.Context) {
	defer func() { l.mu.Lock(); l.lost = nil; l.mu.Unlock() }()
	var last string
	var failing time.Time // since when, in a row
	for ctx.Err() == nil {
		t0 := time.Now()
		err := l.session(ctx)
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		l.lost = err
		l.mu.Unlock()
		if failing.IsZero() || time.Since(t0) > quietFor { // it had been up
			failing = t0
		}
		// The chat server is still starting for a while: only a failure
		// that lasts is worth a line, once per kind, not once a second.
		if msg := fmt.Sprintf("the user's chat connection: %v", err); time.Since(failing) >= quietFor && msg != last && l.Note != nil {
			last = msg
			l.Note(msg)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// session is one connection as the user: it joins the channels and
// records what it hears until the connection or ctx ends.
func (l *UserChat) session(ctx context.Context) error {
	cl, err := chat.Dial(ctx, l.URL, chat.DialOptions{Name: UserChatName, Key: l.Key(), Socket: l.Socket})
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	c := &chatConn{c: cl, ids: map[string]string{}, in: map[string]map[string]bool{}, waiting: map[string]chan error{}}
	for _, ch := range l.Channels {
		if err := cl.Join(ctx, ch); err != nil {
			return err
		}
	}
	l.mu.Lock()
	l.conn = c
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		if l.conn == c {
			l.conn = nil
		}
		for name, ch := range c.waiting {
			ch <- errors.New("the engine's chat connection was lost")
			delete(c.waiting, name)
		}
		l.asks = nil // their echoes and answers went with the connection
		l.mu.Unlock()
	}()
	for {
		f, err := cl.Read(ctx)
		if err != nil {
			return err
		}
		changed := false
		l.mu.Lock()
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
		case chat.TypeStatus:
			if l.work == nil {
				l.work = map[string]Activity{}
			}
			a := Activity{State: f.State, Task: f.Task, Queued: f.Queued, Since: time.Now()}
			if old, ok := l.work[f.FromName]; ok && old.State == a.State && old.Task == a.Task {
				a.Since = old.Since // the queue changed, not the work
			}
			l.work[f.FromName] = a
			changed = true
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
		l.mu.Unlock()
		if changed && l.Changed != nil {
			l.Changed()
		}
		if f.Type != chat.TypeMsg {
			continue
		}
		m := Message{Time: time.UnixMilli(f.TS), From: f.FromName, To: f.To, Content: f.Content}
		if strings.HasPrefix(f.To, "@") {
			m.Direct, m.To = true, f.ToName
		}
		l.add(m)
	}
}

// adminRequest asks the chat server, over the engine's connection as
// the user (its admin), to ADMIT name with pub or to REVOKE it, and waits
// for the answer; until ctx ends it waits for a connection too.
func (l *UserChat) adminRequest(ctx context.Context, typ, name, pub string) error {
	answer := make(chan error, 1)
	var c *chatConn
	for c == nil {
		l.mu.Lock()
		if conn := l.conn; conn != nil && conn.waiting[name] == nil {
			c = conn
			c.waiting[name] = answer
		}
		l.mu.Unlock()
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
		l.mu.Lock()
		if c.waiting[name] == answer {
			delete(c.waiting, name)
		}
		l.mu.Unlock()
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

// Send says content as the user, to a channel (#name) or an agent (its
// name, with or without the @).
func (l *UserChat) Send(ctx context.Context, to, content string) error {
	switch {
	case strings.TrimSpace(content) == "":
		return &Error{BadRequest, "nothing to say: the message is empty"}
	case len(content) > maxChatMessage:
		return &Error{BadRequest, fmt.Sprintf("the message is %d bytes; the chat takes up to %d", len(content), maxChatMessage)}
	}
	l.mu.Lock()
	c, lost := l.conn, l.lost
	var target string
	if c != nil {
		if strings.HasPrefix(to, "#") {
			target = to
		} else {
			target = c.ids[strings.TrimPrefix(to, "@")]
		}
	}
	l.mu.Unlock()
	switch {
	case c == nil && lost != nil:
		return &Error{Unavailable, fmt.Sprintf("the chat is not reachable now (the engine tries again every second): %v", lost)}
	case c == nil:
		return &Error{NotRunning, "the chat is not running: `thesystem start`"}
	case strings.HasPrefix(to, "#") && !slices.Contains(l.Channels, to):
		return &Error{NotFound, fmt.Sprintf("no channel %s: the channels are %s (thesystem.yaml channels)", redact.Quote(to), strings.Join(l.Channels, ", "))}
	case target == "":
		return &Error{NotFound, fmt.Sprintf("%s is not in the chat (see `thesystem status`)", redact.Quote(to))}
	}
	if err := c.c.Say(ctx, target, content); err != nil {
		return &Error{Unavailable, fmt.Sprintf("the chat connection: %v", err)}
	}
	return nil
}

// maxChatMessage is the most the chat server takes in one message.
const maxChatMessage = 2 << 20

// AdmitAgent makes a chat key for this run of the agent and admits it to
// the chat server (the user, its admin, asks over the engine's connection):
// a key that dies with the run. It returns nil, and admits nothing, without
// an allowlist.
func (l *UserChat) AdmitAgent(ctx context.Context, name string) (ed25519.PrivateKey, error) {
	if l.Key() == nil {
		return nil, nil
	}
	key, err := chat.NewKey()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, chatAdminTimeout)
	defer cancel()
	if err := l.adminRequest(ctx, chat.TypeAdmit, name, chat.PublicText(key)); err != nil {
		return nil, fmt.Errorf("admit %s to the chat: %w", name, err)
	}
	return key, nil
}

// RevokeAgent shuts the agent's chat key out and drops its connection,
// when its run ends. Without the engine's connection (the chat server is
// gone or restarting: it forgot the key) there is nothing to do; the next
// run's key replaces it anyway.
func (l *UserChat) RevokeAgent(name string) error {
	if l.Key() == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), chatRevokeTimeout)
	defer cancel()
	if err := l.adminRequest(ctx, chat.TypeRevoke, name, ""); err != nil {
		return fmt.Errorf("revoke %s's chat key: %w", name, err)
	}
	return nil
}

// How long an admission may wait for the engine's chat connection and the
// answer (through the relay and, with a VM, its SSH forward), and a
// revocation.
const (
	chatAdminTimeout  = 30 * time.Second
	chatRevokeTimeout = 5 * time.Second
)
