// Package chat is an embedded chat server that speaks the subset of the
// agentchat protocol TheSystem's agents and dashboard use: HTTP and
// WebSocket on one port, JSON text frames with type and ts; ephemeral
// identities and Ed25519 challenge-response ones; channels, direct
// messages, presence; GET /health. The upstream npm package can be used
// instead where it is installed; this one needs nothing but the binary.
package chat

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/sirupsen/logrus"

	"github.com/thesystem-dev/thesystem/engine/listeners"
	"github.com/thesystem-dev/thesystem/engine/logx"
	"github.com/thesystem-dev/thesystem/engine/webguard"
)

// Options configure a Server.
type Options struct {
	// Channels exist from the start (the configuration's channels).
	Channels []string
	// Name is reported in WELCOME and /health.
	Name string
	// ChallengeTimeout bounds the wait for VERIFY_IDENTITY; 0 means 30 s.
	ChallengeTimeout time.Duration
	// Guard refuses web pages and foreign Hosts on every route: any page
	// the user opens can reach a port on 127.0.0.1. The zero Guard takes
	// loopback Hosts at any port and no browser origin.
	Guard webguard.Guard
	// QueueBytes bounds what waits to be sent to one client; a reader
	// that falls that far behind is dropped, not buffered. 0: 8 MiB.
	QueueBytes int
	// Rate and Burst bound the messages (MSG) one client sends: Rate a
	// second on average, Burst at once; more are answered RATE_LIMITED.
	// 0: 20 and 60.
	Rate, Burst float64
	// PingInterval is how often a client is pinged; one that does not
	// answer within PingInterval is dropped. 0: 30 s.
	PingInterval time.Duration
	// Allow, when not nil, are the only identities admitted: a name and
	// the public key that must prove it (IDENTIFY with that pubkey, then
	// the challenge). Nil admits anyone, ephemeral identities included
	// (server.allowlist: false).
	Allow map[string]ed25519.PublicKey
	// Observers are names whose verified connections get a copy of every
	// direct message (the user and the dashboard: nothing said to an agent
	// is hidden from the user).
	Observers []string
	// Admins are names whose verified connections may change Allow while
	// the server runs (ADMIT a name with its key, REVOKE a name, which
	// also drops its connections): the engine, as the user, admits each
	// run of an agent and revokes it when the agent stops.
	Admins []string
	// IdentifyTimeout is how long a new client may take to IDENTIFY.
	// 0: 30 s.
	IdentifyTimeout time.Duration
	Log             logrus.FieldLogger
	Now             func() time.Time
}

// Server is the chat server. Its methods are safe for concurrent use.
type Server struct {
	opt   Options
	log   logrus.FieldLogger
	start time.Time

	mu       sync.Mutex
	allow    map[string]ed25519.PublicKey // nil: an open server
	conns    map[*conn]struct{}
	byID     map[string]*conn
	channels map[string]map[*conn]struct{}
	pending  map[string]*challenge
	msgSeq   uint64
}

type challenge struct {
	c       *conn
	name    string
	pemText string
	pub     ed25519.PublicKey
	nonce   string
	expires time.Time
}

// conn is one client. Its identity fields are guarded by Server.mu.
type conn struct {
	ws   *websocket.Conn
	out  chan []byte
	done chan struct{}

	queued atomic.Int64 // bytes in out
	// The MSG rate limit: a token bucket (only the read loop touches it).
	tokens float64
	last   time.Time

	id       string // without the @
	name     string
	verified bool
	pub      ed25519.PublicKey // a verified identity's
	joined   map[string]bool
}

// New makes a server with opt.Channels created.
func New(opt Options) *Server {
	if opt.Name == "" {
		opt.Name = "thesystem"
	}
	if opt.ChallengeTimeout <= 0 {
		opt.ChallengeTimeout = 30 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.QueueBytes <= 0 {
		opt.QueueBytes = 8 << 20
	}
	if opt.Rate <= 0 {
		opt.Rate = 20
	}
	if opt.Burst <= 0 {
		opt.Burst = 60
	}
	if opt.PingInterval <= 0 {
		opt.PingInterval = 30 * time.Second
	}
	if opt.IdentifyTimeout <= 0 {
		opt.IdentifyTimeout = 30 * time.Second
	}
	log := logx.OrDiscard(opt.Log)
	s := &Server{opt: opt, log: log.WithField("component", "agentchat"), start: opt.Now(),
		conns: map[*conn]struct{}{}, byID: map[string]*conn{}, channels: map[string]map[*conn]struct{}{}, pending: map[string]*challenge{}}
	if opt.Allow != nil {
		s.allow = make(map[string]ed25519.PublicKey, len(opt.Allow))
		for name, pub := range opt.Allow {
			s.allow[name] = pub
		}
	}
	for _, ch := range opt.Channels {
		s.channels[ch] = map[*conn]struct{}{}
	}
	return s
}

// Serve answers on ln until ctx ends; cancellation is not an error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	return listeners.ServeHTTP(ctx, srv, ln)
}

// Health is GET /health.
type Health struct {
	Status   string `json:"status"`
	Server   string `json:"server"`
	Agents   int    `json:"agents"`
	Channels int    `json:"channels"`
	Uptime   int64  `json:"uptime"`
}

func (s *Server) health() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.id != "" {
			n++
		}
	}
	return Health{Status: "healthy", Server: s.opt.Name, Agents: n, Channels: len(s.channels), Uptime: int64(s.opt.Now().Sub(s.start).Seconds())}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := s.opt.Guard.Check(r); err != nil {
		s.log.WithError(err).Warn("refused")
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if r.URL.Path == "/health" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.health())
		return
	}
	// The guard has checked the Origin, more strictly than Accept would.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept has answered
	}
	ws.SetReadLimit(maxContent + 64<<10)
	c := &conn{ws: ws, out: make(chan []byte, 1024), done: make(chan struct{}), joined: map[string]bool{}, tokens: s.opt.Burst, last: s.opt.Now()}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	ctx := r.Context()
	go c.writeLoop(ctx)
	go s.keepAlive(ctx, c)
	defer func() {
		s.disconnect(c)
		close(c.done)
		_ = ws.CloseNow()
	}()
	for {
		typ, data, err := ws.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			s.sendError(c, CodeInvalidMsg, "text frames only")
			continue
		}
		s.handle(c, data)
	}
}

func (c *conn) writeLoop(ctx context.Context) {
	for {
		select {
		case <-c.done:
			return
		case b := <-c.out:
			c.queued.Add(-int64(len(b)))
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.ws.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				_ = c.ws.CloseNow()
				return
			}
		}
	}
}

// send queues a message; a client too slow to take it is disconnected
// rather than allowed to stall everyone else.
func (s *Server) send(c *conn, typ string, fields map[string]any) {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["type"] = typ
	fields["ts"] = s.opt.Now().UnixMilli()
	b, err := json.Marshal(fields)
	if err != nil {
		return
	}
	if c.queued.Add(int64(len(b))) > int64(s.opt.QueueBytes) {
		c.queued.Add(-int64(len(b)))
		s.drop(c, "too slow: more than the send queue holds is waiting")
		return
	}
	select {
	case c.out <- b:
	default:
		c.queued.Add(-int64(len(b)))
		s.drop(c, "too slow: the send queue is full")
	}
}

// drop disconnects a client at once, with a reason.
func (s *Server) drop(c *conn, why string) {
	s.disconnect(c)
	s.log.WithField("why", why).Warn("dropped a client")
	go func() { _ = c.ws.Close(websocket.StatusPolicyViolation, why) }()
	go func() { time.Sleep(time.Second); _ = c.ws.CloseNow() }()
}

// keepAlive drops a client that has not identified within
// IdentifyTimeout, or does not answer a ping within PingInterval.
func (s *Server) keepAlive(ctx context.Context, c *conn) {
	select {
	case <-c.done:
		return
	case <-ctx.Done():
		return
	case <-time.After(s.opt.IdentifyTimeout):
	}
	s.mu.Lock()
	identified := c.id != ""
	s.mu.Unlock()
	if !identified {
		s.drop(c, "did not IDENTIFY in time")
		return
	}
	t := time.NewTicker(s.opt.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, s.opt.PingInterval)
			err := c.ws.Ping(pctx)
			cancel()
			if err != nil {
				s.drop(c, "did not answer a ping")
				return
			}
		}
	}
}

// takeToken takes one MSG from the client's bucket (the read loop's only).
func (s *Server) takeToken(c *conn) bool {
	now := s.opt.Now()
	c.tokens = min(s.opt.Burst, c.tokens+now.Sub(c.last).Seconds()*s.opt.Rate)
	c.last = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

func (s *Server) sendError(c *conn, code, msg string) {
	s.send(c, TypeError, map[string]any{"code": code, "message": msg})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) handle(c *conn, data []byte) {
	var m inbound
	if err := json.Unmarshal(data, &m); err != nil {
		s.sendError(c, CodeInvalidMsg, "invalid JSON")
		return
	}
	s.mu.Lock()
	identified := c.id != ""
	s.mu.Unlock()
	switch m.Type {
	case TypeIdentify:
		s.identify(c, m)
		return
	case TypeVerifyIdentity:
		s.verify(c, m)
		return
	case TypePing:
		s.send(c, TypePong, nil)
		return
	case "":
		s.sendError(c, CodeInvalidMsg, "missing message type")
		return
	}
	if !identified {
		switch m.Type {
		case TypeJoin, TypeLeave, TypeMsg, TypeListChannels, TypeListAgents, TypeAdmit, TypeRevoke, TypeStatus:
			s.sendError(c, CodeAuthRequired, "IDENTIFY first")
			return
		}
	}
	switch m.Type {
	case TypeJoin:
		s.join(c, m.Channel)
	case TypeLeave:
		s.leave(c, m.Channel)
	case TypeMsg:
		if !s.takeToken(c) {
			s.sendError(c, CodeRateLimited, fmt.Sprintf("more than %g messages a second; slow down", s.opt.Rate))
			return
		}
		s.message(c, m)
	case TypeListChannels:
		s.listChannels(c)
	case TypeListAgents:
		s.listAgents(c, m.Channel)
	case TypeAdmit, TypeRevoke:
		s.admin(c, m)
	case TypeStatus:
		if !s.takeToken(c) {
			s.sendError(c, CodeRateLimited, fmt.Sprintf("more than %g messages a second; slow down", s.opt.Rate))
			return
		}
		s.status(c, m)
	default:
		s.sendError(c, CodeInvalidMsg, fmt.Sprintf("unknown message type %q", m.Type))
	}
}

func (s *Server) identify(c *conn, m inbound) {
	if !ValidName(m.Name) {
		s.sendError(c, CodeInvalidName, "names are 1..32 of a-z A-Z 0-9 _ -")
		return
	}
	s.mu.Lock()
	if c.id != "" {
		s.mu.Unlock()
		s.sendError(c, CodeInvalidMsg, "already identified")
		return
	}
	for _, ch := range s.pending {
		if ch.c == c {
			s.mu.Unlock()
			s.sendError(c, CodeInvalidMsg, "challenge already pending")
			return
		}
	}
	if s.allow != nil && m.Pubkey == "" {
		s.mu.Unlock()
		s.log.WithField("name", m.Name).Warn("refused an identify without a key")
		s.sendError(c, CodeAuthRequired, "this server admits only the identities TheSystem issued: IDENTIFY with your pubkey")
		return
	}
	if m.Pubkey == "" {
		c.id, c.name = randomHex(4), m.Name
		s.byID[c.id] = c
		id := c.id
		s.mu.Unlock()
		s.log.WithFields(logrus.Fields{"id": id, "name": m.Name}).Info("identify (ephemeral)")
		s.send(c, TypeWelcome, map[string]any{"agent_id": "@" + id, "name": m.Name, "server": s.opt.Name})
		return
	}
	s.mu.Unlock()
	pub, err := parsePubkey(m.Pubkey)
	if err != nil {
		s.sendError(c, CodeInvalidMsg, "invalid public key format (must be Ed25519 PEM): "+err.Error())
		return
	}
	s.mu.Lock()
	want, admitted := s.allow[m.Name]
	open := s.allow == nil
	s.mu.Unlock()
	if !open {
		// A name belongs to its key: nobody else can be agent-1.
		if !admitted || !want.Equal(pub) {
			s.log.WithField("name", m.Name).Warn("refused an identity this server does not admit")
			s.sendError(c, CodeAuthRequired, "this name and key are not an identity this server admits")
			return
		}
	}
	ch := &challenge{c: c, name: m.Name, pemText: m.Pubkey, pub: pub, nonce: randomHex(16), expires: s.opt.Now().Add(s.opt.ChallengeTimeout)}
	id := "chal_" + randomHex(8)
	s.mu.Lock()
	s.pending[id] = ch
	s.mu.Unlock()
	time.AfterFunc(s.opt.ChallengeTimeout, func() {
		s.mu.Lock()
		_, still := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if still {
			s.sendError(c, CodeVerificationExpired, "challenge expired")
		}
	})
	s.send(c, TypeChallenge, map[string]any{"challenge_id": id, "nonce": ch.nonce, "expires_at": ch.expires.UnixMilli()})
}

func (s *Server) verify(c *conn, m inbound) {
	s.mu.Lock()
	ch, ok := s.pending[m.ChallengeID]
	if ok && ch.c == c {
		delete(s.pending, m.ChallengeID)
	}
	s.mu.Unlock()
	switch {
	case !ok:
		s.sendError(c, CodeVerificationExpired, "challenge not found or expired")
		return
	case ch.c != c:
		s.sendError(c, CodeInvalidMsg, "challenge belongs to a different connection")
		return
	case s.opt.Now().After(ch.expires):
		s.sendError(c, CodeVerificationExpired, "challenge expired")
		return
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil || !ed25519.Verify(ch.pub, []byte(AuthSigningContent(ch.nonce, m.ChallengeID, m.Timestamp)), sig) {
		s.log.WithField("name", ch.name).Warn("refused an identity whose signature does not verify")
		s.sendError(c, CodeVerificationFailed, "invalid signature")
		return
	}
	id := PubkeyToAgentID(ch.pemText)
	s.mu.Lock()
	if want, ok := s.allow[ch.name]; s.allow != nil && (!ok || !want.Equal(ch.pub)) {
		s.mu.Unlock() // revoked while it was proving itself
		s.log.WithField("name", ch.name).Warn("refused an identity revoked while it proved itself")
		s.sendError(c, CodeAuthRequired, "this name and key are not an identity this server admits")
		return
	}
	if old, taken := s.byID[id]; taken && old != c {
		s.mu.Unlock()
		s.disconnect(old)
		go func() { _ = old.ws.Close(websocket.StatusNormalClosure, "identity claimed by a verified connection") }()
		s.mu.Lock()
	}
	c.id, c.name, c.verified, c.pub = id, ch.name, true, ch.pub
	s.byID[id] = c
	s.mu.Unlock()
	s.log.WithFields(logrus.Fields{"id": id, "name": ch.name}).Info("identify (verified)")
	s.send(c, TypeWelcome, map[string]any{"agent_id": "@" + id, "name": ch.name, "server": s.opt.Name, "verified": true})
}

// admin is ADMIT (name, pubkey in PublicText's form) and REVOKE (name)
// from a verified admin: the change is answered with the type ADMITTED or
// REVOKED and the name (a refusal: ERROR with the name), and drops every connection of that name that no
// longer holds its key.
func (s *Server) admin(c *conn, m inbound) {
	// The answer names the request's name: the admin may have several in
	// flight.
	refuse := func(code, msg string) {
		// An agent trying is worth a trace in the server's log.
		s.log.WithFields(logrus.Fields{"by": c.name, "asked": m.Type, "code": code}).Warn("refused an admin request")
		s.send(c, TypeError, map[string]any{"code": code, "message": msg, "name": m.Name})
	}
	s.mu.Lock()
	isAdmin := c.verified && slices.Contains(s.opt.Admins, c.name)
	open := s.allow == nil
	s.mu.Unlock()
	switch {
	case !isAdmin:
		refuse(CodeNotAllowed, m.Type+" is for the server's admins")
		return
	case open:
		refuse(CodeInvalidMsg, "this server admits anyone: it has no allowlist to change")
		return
	case !ValidName(m.Name):
		refuse(CodeInvalidName, "names are 1..32 of a-z A-Z 0-9 _ -")
		return
	case slices.Contains(s.opt.Admins, m.Name):
		refuse(CodeNotAllowed, "an admin's own identity is fixed while the server runs")
		return
	}
	var pub ed25519.PublicKey
	if m.Type == TypeAdmit {
		var err error
		if pub, err = ParsePublicText(m.Pubkey); err != nil {
			refuse(CodeInvalidMsg, "pubkey: "+err.Error())
			return
		}
	}
	s.mu.Lock()
	if pub != nil {
		s.allow[m.Name] = pub
	} else {
		delete(s.allow, m.Name)
	}
	var gone []*conn
	for o := range s.conns {
		if o.name == m.Name && o.verified && (pub == nil || !pub.Equal(o.pub)) {
			gone = append(gone, o)
		}
	}
	for id, p := range s.pending {
		if p.name == m.Name && (pub == nil || !pub.Equal(p.pub)) {
			delete(s.pending, id)
		}
	}
	s.mu.Unlock()
	for _, o := range gone {
		s.drop(o, m.Name+"'s identity was revoked")
	}
	s.log.WithFields(logrus.Fields{"name": m.Name, "by": c.name, "dropped": len(gone)}).Info(strings.ToLower(m.Type))
	done := TypeAdmitted
	if m.Type == TypeRevoke {
		done = TypeRevoked
	}
	s.send(c, done, map[string]any{"name": m.Name})
}

// members lists a channel's agents; s.mu is held.
func (s *Server) membersLocked(channel string) []AgentRef {
	out := []AgentRef{}
	for m := range s.channels[channel] {
		out = append(out, AgentRef{ID: "@" + m.id, Name: m.name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (s *Server) join(c *conn, channel string) {
	if !ValidChannel(channel) {
		s.sendError(c, CodeInvalidMsg, "invalid channel name")
		return
	}
	s.mu.Lock()
	members, ok := s.channels[channel]
	if !ok {
		s.mu.Unlock()
		s.sendError(c, CodeChannelNotFound, fmt.Sprintf("channel %s does not exist", channel))
		return
	}
	others := peers(members, c)
	members[c] = struct{}{}
	c.joined[channel] = true
	list := s.membersLocked(channel)
	id, name := c.id, c.name
	s.mu.Unlock()
	s.send(c, TypeJoined, map[string]any{"channel": channel, "agents": list})
	for _, o := range others {
		s.send(o, TypeAgentJoined, map[string]any{"channel": channel, "agent": "@" + id, "name": name})
	}
}

func peers(members map[*conn]struct{}, except *conn) []*conn {
	out := make([]*conn, 0, len(members))
	for m := range members {
		if m != except {
			out = append(out, m)
		}
	}
	return out
}

func (s *Server) leave(c *conn, channel string) {
	s.mu.Lock()
	if !c.joined[channel] {
		s.mu.Unlock()
		s.sendError(c, CodeNotInvited, fmt.Sprintf("not in %s", channel))
		return
	}
	delete(s.channels[channel], c)
	delete(c.joined, channel)
	others := peers(s.channels[channel], c)
	id, name := c.id, c.name
	s.mu.Unlock()
	s.send(c, TypeLeft, map[string]any{"channel": channel})
	for _, o := range others {
		s.send(o, TypeAgentLeft, map[string]any{"channel": channel, "agent": "@" + id, "name": name})
	}
}

func (s *Server) message(c *conn, m inbound) {
	if m.Content == nil {
		s.sendError(c, CodeInvalidMsg, "missing or invalid content")
		return
	}
	if len(*m.Content) > maxContent {
		s.sendError(c, CodeInvalidMsg, "content too long (max 2MB)")
		return
	}
	s.mu.Lock()
	s.msgSeq++
	out := map[string]any{"from": "@" + c.id, "from_name": c.name, "to": m.To, "content": *m.Content,
		"msg_id": fmt.Sprintf("m%d", s.msgSeq)}
	var targets []*conn
	switch {
	case len(m.To) > 0 && m.To[0] == '#':
		if !c.joined[m.To] {
			s.mu.Unlock()
			s.sendError(c, CodeNotInvited, fmt.Sprintf("join %s before sending to it", m.To))
			return
		}
		targets = peers(s.channels[m.To], nil)
	case len(m.To) > 0 && m.To[0] == '@':
		t, ok := s.byID[m.To[1:]]
		if !ok {
			s.mu.Unlock()
			s.sendError(c, CodeAgentNotFound, fmt.Sprintf("agent %s not found", m.To))
			return
		}
		targets = []*conn{t}
		if t != c {
			targets = append(targets, c)
		}
		out["to_name"] = t.name
		for o := range s.conns {
			if o.verified && o != t && o != c && slices.Contains(s.opt.Observers, o.name) {
				targets = append(targets, o)
			}
		}
	default:
		s.mu.Unlock()
		s.sendError(c, CodeInvalidMsg, "invalid target (must start with # or @)")
		return
	}
	s.mu.Unlock()
	for _, t := range targets {
		fields := make(map[string]any, len(out)+2)
		for k, v := range out {
			fields[k] = v
		}
		s.send(t, TypeMsg, fields)
	}
}

// ChannelInfo is an entry of CHANNELS.
type ChannelInfo struct {
	Name   string `json:"name"`
	Agents int    `json:"agents"`
}

func (s *Server) listChannels(c *conn) {
	s.mu.Lock()
	list := make([]ChannelInfo, 0, len(s.channels))
	for name, members := range s.channels {
		list = append(list, ChannelInfo{Name: name, Agents: len(members)})
	}
	s.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	s.send(c, TypeChannels, map[string]any{"list": list})
}

// status passes what a client says it is doing (STATUS: state, task,
// queued) to the verified observers (the user, the dashboard), stamped
// with who said it, like a message.
func (s *Server) status(c *conn, m inbound) {
	if len(m.State) > 32 || len(m.Task) > 512 {
		s.sendError(c, CodeInvalidMsg, "status too long (state up to 32, task up to 512 bytes)")
		return
	}
	s.mu.Lock()
	var targets []*conn
	for o := range s.conns {
		if o.verified && o != c && slices.Contains(s.opt.Observers, o.name) {
			targets = append(targets, o)
		}
	}
	id, name := c.id, c.name
	s.mu.Unlock()
	for _, t := range targets {
		s.send(t, TypeStatus, map[string]any{"from": "@" + id, "from_name": name, "state": m.State, "task": m.Task, "queued": m.Queued})
	}
}

func (s *Server) listAgents(c *conn, channel string) {
	s.mu.Lock()
	if _, ok := s.channels[channel]; !ok {
		s.mu.Unlock()
		s.sendError(c, CodeChannelNotFound, fmt.Sprintf("channel %s does not exist", channel))
		return
	}
	list := s.membersLocked(channel)
	s.mu.Unlock()
	s.send(c, TypeAgents, map[string]any{"channel": channel, "list": list})
}

// disconnect forgets c and tells its channels.
func (s *Server) disconnect(c *conn) {
	s.mu.Lock()
	if _, ok := s.conns[c]; !ok {
		s.mu.Unlock()
		return
	}
	delete(s.conns, c)
	if s.byID[c.id] == c {
		delete(s.byID, c.id)
	}
	type note struct {
		to      *conn
		channel string
	}
	var notes []note
	for ch := range c.joined {
		delete(s.channels[ch], c)
		for _, o := range peers(s.channels[ch], c) {
			notes = append(notes, note{o, ch})
		}
	}
	for id, p := range s.pending {
		if p.c == c {
			delete(s.pending, id)
		}
	}
	id, name := c.id, c.name
	s.mu.Unlock()
	for _, n := range notes {
		s.send(n.to, TypeAgentLeft, map[string]any{"channel": n.channel, "agent": "@" + id, "name": name})
	}
}
