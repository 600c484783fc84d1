package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// Component states, as the supervisor reports them.
const (
	StateStopped    = "stopped"
	StateStarting   = "starting"
	StateHealthy    = "healthy"
	StateDegraded   = "degraded"
	StateRestarting = "restarting"
	StateFailed     = "failed"
	StateStopping   = "stopping"
)

// Component is one component's state on the wire.
type Component struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	Restarts  int       `json:"restarts"`
	Crashes   int       `json:"crashes"`
	LastError string    `json:"last_error,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	PID       int       `json:"pid,omitempty"`
	Ports     []int     `json:"ports,omitempty"`
	LastLines []string  `json:"last_lines,omitempty"`
}

// Status is the engine's state: its own, then every component's in start
// order.
type Status struct {
	Seq     uint64    `json:"seq"`
	Running bool      `json:"running"` // the stack is started
	PID     int       `json:"pid"`     // the daemon's
	Version string    `json:"version"`
	Since   time.Time `json:"since"` // the daemon's start
	Config  string    `json:"config,omitempty"`
	Project string    `json:"project,omitempty"` // the agents' project (vm.mount)
	// ExitOnStop: a daemon that `start` launched, which exits with its
	// stack (not one the user runs in the foreground).
	ExitOnStop bool        `json:"exit_on_stop,omitempty"`
	Components []Component `json:"components"`
	// Agents are the agents and what each says it does; the events
	// stream carries a new Status when that changes too.
	Agents []Agent `json:"agents,omitempty"`
	// Today is what was spent through the proxy since midnight (local),
	// by the agents and the user's own token.
	Today *UsageRow `json:"today,omitempty"`
}

// LogLine is one line of a component's output.
type LogLine struct {
	Time      time.Time `json:"time"`
	Component string    `json:"component"`
	Stream    string    `json:"stream"`
	Text      string    `json:"text"`
}

// ReadLogFile reads the last n lines of component ("" for all) that an
// engine kept on disk (files, the oldest first: EngineLog.1, EngineLog),
// for when none runs. A missing file has no lines.
func ReadLogFile(files []string, component string, n int) ([]LogLine, error) {
	var out []LogLine
	for _, name := range files {
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var l LogLine
			if json.Unmarshal(sc.Bytes(), &l) != nil || (component != "" && l.Component != component) {
				continue
			}
			out = append(out, l)
			if len(out) > 2*n+1000 { // bounded memory: only the tail is kept
				out = append(out[:0], out[len(out)-n:]...)
			}
		}
		err = sc.Err()
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}

// KeyInfo describes a stored key without revealing it.
type KeyInfo struct {
	Provider    string `json:"provider"`
	Fingerprint string `json:"fingerprint"`
}

// SetKeyRequest carries a key into the engine (PUT /v1/keys/{provider}).
// The key is stored and hot-swapped into the proxy; no route returns it.
type SetKeyRequest struct {
	Key string `json:"key"`
}

// Check is one finding of the doctor.
type Check struct {
	ID     string `json:"id"`
	Status string `json:"status"` // ok, warn, fail
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Check statuses.
const (
	CheckOK   = "ok"
	CheckWarn = "warn"
	CheckFail = "fail"
)

// Agent is one agent of the swarm.
type Agent struct {
	Name     string    `json:"name"`
	Backend  string    `json:"backend"`
	Provider string    `json:"provider"`
	State    string    `json:"state"`
	Since    time.Time `json:"since"`
	// InChat: the agent is in the team's chat (as the engine hears it).
	InChat bool `json:"in_chat"`
	// Work is what it says it does: idle or working (on Task, since
	// WorkSince), with Queued tasks waiting; "" when it has not said.
	Work      string    `json:"work,omitempty"`
	Task      string    `json:"task,omitempty"`
	WorkSince time.Time `json:"work_since,omitzero"`
	Queued    int       `json:"queued,omitempty"`
	// Today is what it spent since midnight (local), as the proxy
	// counted it; Budget what its budget leaves it (nil: none).
	Today  *UsageRow   `json:"today,omitempty"`
	Budget *BudgetLeft `json:"budget,omitempty"`
}

// ChatMessage is a message of the team's chat, as the user hears it.
type ChatMessage struct {
	Time time.Time `json:"time"`
	From string    `json:"from"` // the sender's name
	// To is the channel (#name), or for a direct message the name of the
	// agent it went to.
	To      string `json:"to"`
	Direct  bool   `json:"direct,omitempty"`
	Content string `json:"content"`
}

// ChatSend is what the user says, and to whom: a channel (#name) or an
// agent's name.
type ChatSend struct {
	To      string `json:"to"`
	Content string `json:"content"`
}

// Dashboard is where the user's browser opens the dashboard: its address
// with the key (?key=…) that lets that browser in, and a page (a file only
// the user reads) that sends the browser there, to open instead of the URL
// itself: a URL on a command line (xdg-open, the browser's) is visible to
// every local account in the process list.
type Dashboard struct {
	URL  string `json:"url"`
	Page string `json:"page"`
}

// Bundle is an agent's branch as a git bundle: which branch, at which
// commit (the bytes are the response's body).
type Bundle struct {
	Agent  string `json:"agent"`
	Branch string `json:"branch"`
	Commit string `json:"commit"`
}

// AgentDiff is what an agent changed in its working copy: its commits,
// the files, the diff, as the agent tells it.
type AgentDiff struct {
	Diff string `json:"diff"`
}

// Usage is what the agents spent, as the proxy counted it, since Since:
// a row per agent, provider and model, each agent's totals with its
// budget, and the total. Costs are estimates from a price table (dated
// PricesDate, overridden by thesystem.yaml's proxy.prices); a model with
// no price has its tokens counted and no cost.
type Usage struct {
	Since      time.Time    `json:"since"`
	Until      time.Time    `json:"until"`
	Rows       []UsageRow   `json:"rows"`
	Agents     []AgentSpend `json:"agents"`
	Total      UsageRow     `json:"total"`
	PricesDate string       `json:"prices_date"`
	// Unpriced are the models seen that have no price.
	Unpriced []string `json:"unpriced,omitempty"`
}

// UsageRow is the requests and tokens of one agent, provider and model
// (or a total, with the fields it sums over empty). CostUSD is absent when
// no token of it has a price; CostPartial says some have none.
type UsageRow struct {
	Agent       string   `json:"agent,omitempty"`
	Provider    string   `json:"provider,omitempty"`
	Model       string   `json:"model,omitempty"`
	Requests    int64    `json:"requests"`
	Refused     int64    `json:"refused,omitempty"`
	TokensIn    int64    `json:"tokens_in"`
	TokensOut   int64    `json:"tokens_out"`
	CacheRead   int64    `json:"cache_read_tokens,omitempty"`
	CacheWrite  int64    `json:"cache_write_tokens,omitempty"`
	CostUSD     *float64 `json:"cost_usd,omitempty"`
	CostPartial bool     `json:"cost_partial,omitempty"`
}

// Tokens is the row's input and output tokens.
func (r UsageRow) Tokens() int64 { return r.TokensIn + r.TokensOut }

// CostText is the estimated cost: "$0.12", "$0.0016" under a cent, "-"
// without a price, "≥ $x" when part of it has none.
func (r UsageRow) CostText() string {
	if r.CostUSD == nil {
		return "-"
	}
	s := fmt.Sprintf("$%.2f", *r.CostUSD)
	if *r.CostUSD > 0 && *r.CostUSD < 0.01 {
		s = fmt.Sprintf("$%.4f", *r.CostUSD)
	}
	if r.CostPartial {
		s = "≥ " + s
	}
	return s
}

// ShortCount is a count, short: 950, 12.3k, 4.56M.
func ShortCount(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprint(n)
	case n < 1_000_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	default:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	}
}

// AgentSpend is one agent's totals and what its budget leaves it.
type AgentSpend struct {
	UsageRow
	Budget *BudgetLeft `json:"budget,omitempty"`
}

// BudgetLeft is an agent's budget in its current period: the limits (0:
// none), what it used, and when the period ends.
type BudgetLeft struct {
	Tokens       int64     `json:"tokens,omitempty"`
	Requests     int64     `json:"requests,omitempty"`
	UsedTokens   int64     `json:"used_tokens"`
	UsedRequests int64     `json:"used_requests"`
	Resets       time.Time `json:"resets"`
}

// Fraction is how much of the budget is used (the larger of tokens and
// requests), 0 without limits.
func (b BudgetLeft) Fraction() float64 {
	f := 0.0
	if b.Tokens > 0 {
		f = float64(b.UsedTokens) / float64(b.Tokens)
	}
	if b.Requests > 0 {
		f = max(f, float64(b.UsedRequests)/float64(b.Requests))
	}
	return f
}
