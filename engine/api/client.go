package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/thesystem-dev/thesystem/engine/config"
)

// Client talks to the engine's API. The zero value uses the default
// socket ($THESYSTEM_RUNTIME_DIR or the platform's runtime dir).
type Client struct {
	// Socket overrides the socket path.
	Socket string

	once sync.Once
	hc   *http.Client
}

// DefaultSocket is where the daemon listens by default.
func DefaultSocket() string {
	home, _ := os.UserHomeDir()
	return config.HostPaths(os.LookupEnv, home).APISocket()
}

func (c *Client) socket() string {
	if c.Socket != "" {
		return c.Socket
	}
	return DefaultSocket()
}

func (c *Client) http() *http.Client {
	c.once.Do(func() {
		sock := c.socket()
		c.hc = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			},
			DisableCompression: true,
		}}
	})
	return c.hc
}

// do sends a request and decodes a JSON reply into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s reply: %w", path, err)
	}
	return nil
}

// send returns a 2xx response, or the error the server described.
func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+Host+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, &Error{Code: ErrNoDaemon.Code, Message: fmt.Sprintf("the engine is not running (no daemon at %s)", c.socket())}
		}
		return nil, fmt.Errorf("engine API: %w", err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer func() { _ = resp.Body.Close() }()
	var e struct {
		Error *Error `json:"error"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e) != nil || e.Error == nil {
		return nil, &Error{Code: ErrInternal.Code, Status: resp.StatusCode, Message: fmt.Sprintf("engine API: %s", resp.Status)}
	}
	e.Error.Status = resp.StatusCode
	return nil, e.Error
}

// Status returns the engine's state.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Start brings the stack up and returns once it is healthy or failed.
func (c *Client) Start(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/start", nil, nil)
}

// Stop takes the stack down.
func (c *Client) Stop(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/stop", nil, nil)
}

// Shutdown stops the stack and ends the daemon.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/shutdown", nil, nil)
}

// Restart restarts one component and its dependents.
func (c *Client) Restart(ctx context.Context, component string) error {
	return c.do(ctx, http.MethodPost, "/v1/restart/"+url.PathEscape(component), nil, nil)
}

// Logs returns the last n lines of component ("" for all).
func (c *Client) Logs(ctx context.Context, component string, n int) ([]LogLine, error) {
	var lines []LogLine
	q := url.Values{"component": {component}, "n": {strconv.Itoa(n)}}
	return lines, c.do(ctx, http.MethodGet, "/v1/logs?"+q.Encode(), nil, &lines)
}

// FollowLogs calls fn with the last n lines and then every new one until
// ctx ends or fn returns false.
func (c *Client) FollowLogs(ctx context.Context, component string, n int, fn func(LogLine) bool) error {
	q := url.Values{"component": {component}, "n": {strconv.Itoa(n)}, "follow": {"1"}}
	return streamLines(ctx, c, "/v1/logs?"+q.Encode(), fn)
}

// Events calls fn with the current status and then every change until ctx
// ends or fn returns false.
func (c *Client) Events(ctx context.Context, fn func(Status) bool) error {
	return streamLines(ctx, c, "/v1/events", fn)
}

func streamLines[T any](ctx context.Context, c *Client, path string, fn func(T) bool) error {
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return fmt.Errorf("decode %s: %w", path, err)
		}
		if !fn(v) {
			return nil
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return errors.New("the engine ended the stream (it stopped, or this reader fell too far behind)")
}

// Chat is the team chat's last n messages: of one channel ("#name"), or all.
func (c *Client) Chat(ctx context.Context, channel string, n int) ([]ChatMessage, error) {
	var msgs []ChatMessage
	return msgs, c.do(ctx, http.MethodGet, chatQuery(channel, n, false), nil, &msgs)
}

// FollowChat calls fn with the last n messages and then every new one
// until ctx ends or fn returns false; of one channel ("#name"), or all.
func (c *Client) FollowChat(ctx context.Context, channel string, n int, fn func(ChatMessage) bool) error {
	return streamLines(ctx, c, chatQuery(channel, n, true), fn)
}

func chatQuery(channel string, n int, follow bool) string {
	q := url.Values{"n": {strconv.Itoa(n)}}
	if channel != "" {
		q.Set("channel", channel)
	}
	if follow {
		q.Set("follow", "1")
	}
	return "/v1/chat?" + q.Encode()
}

// ChatSend says content as the user to a channel (#name) or an agent.
func (c *Client) ChatSend(ctx context.Context, to, content string) error {
	return c.do(ctx, http.MethodPost, "/v1/chat", ChatSend{To: to, Content: content}, nil)
}

// Dashboard is the dashboard's address with its key, and the page that
// opens it.
func (c *Client) Dashboard(ctx context.Context) (Dashboard, error) {
	var d Dashboard
	err := c.do(ctx, http.MethodGet, "/v1/dashboard", nil, &d)
	return d, err
}

// AgentDiff is what the agent changed in its working copy.
func (c *Client) AgentDiff(ctx context.Context, name string) (string, error) {
	return c.agentDiff(ctx, name, "")
}

// AgentDiffStat is the agent's commits and the files it changed with
// their line counts, without the diff itself.
func (c *Client) AgentDiffStat(ctx context.Context, name string) (string, error) {
	return c.agentDiff(ctx, name, "?stat=1")
}

func (c *Client) agentDiff(ctx context.Context, name, query string) (string, error) {
	var d AgentDiff
	err := c.do(ctx, http.MethodGet, "/v1/agents/"+url.PathEscape(name)+"/diff"+query, nil, &d)
	return d.Diff, err
}

// Usage is what the agents spent since (a duration back from now like
// 24h or 7d, or an RFC 3339 time; "" for all), of agent ("" for all).
func (c *Client) Usage(ctx context.Context, since, agent string) (Usage, error) {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	if agent != "" {
		q.Set("agent", agent)
	}
	var u Usage
	path := "/v1/usage"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return u, c.do(ctx, http.MethodGet, path, nil, &u)
}

// AgentBundle copies the agent's branch, as a git bundle, to w.
func (c *Client) AgentBundle(ctx context.Context, name string, w io.Writer) (Bundle, error) {
	resp, err := c.send(ctx, http.MethodGet, "/v1/agents/"+url.PathEscape(name)+"/bundle", nil)
	if err != nil {
		return Bundle{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	branch, commit, _ := strings.Cut(resp.Header.Get(BundleHeader), " ")
	if _, err := io.Copy(w, resp.Body); err != nil {
		return Bundle{}, fmt.Errorf("the bundle: %w", err)
	}
	return Bundle{Agent: name, Branch: branch, Commit: commit}, nil
}

// Keys lists the stored keys' fingerprints.
func (c *Client) Keys(ctx context.Context) ([]KeyInfo, error) {
	var k []KeyInfo
	return k, c.do(ctx, http.MethodGet, "/v1/keys", nil, &k)
}

// SetKey stores a key and hot-swaps it into the running proxy.
func (c *Client) SetKey(ctx context.Context, provider, key string) (KeyInfo, error) {
	var info KeyInfo
	return info, c.do(ctx, http.MethodPut, "/v1/keys/"+url.PathEscape(provider), SetKeyRequest{Key: key}, &info)
}

// DeleteKey deletes a key and drops it from the running proxy.
func (c *Client) DeleteKey(ctx context.Context, provider string) error {
	return c.do(ctx, http.MethodDelete, "/v1/keys/"+url.PathEscape(provider), nil, nil)
}

// RotateTokens revokes and re-issues every agent token.
func (c *Client) RotateTokens(ctx context.Context) (int, error) {
	var out struct {
		Rotated int `json:"rotated"`
	}
	return out.Rotated, c.do(ctx, http.MethodPost, "/v1/tokens/rotate", nil, &out)
}

// Agents lists the swarm.
func (c *Client) Agents(ctx context.Context) ([]Agent, error) {
	var a []Agent
	return a, c.do(ctx, http.MethodGet, "/v1/agents", nil, &a)
}

// Destroy stops the stack and deletes what it built.
func (c *Client) Destroy(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/destroy", nil, nil)
}

// Reinstall rebuilds the images and runtimes.
func (c *Client) Reinstall(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/reinstall", nil, nil)
}

// Doctor runs the engine's checks.
func (c *Client) Doctor(ctx context.Context) ([]Check, error) {
	var cs []Check
	return cs, c.do(ctx, http.MethodGet, "/v1/doctor", nil, &cs)
}
