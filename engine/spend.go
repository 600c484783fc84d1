package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/proxy"
	"github.com/thesystem-dev/thesystem/engine/redact"
	"github.com/thesystem-dev/thesystem/engine/usage"
)

// prices is the built-in table with thesystem.yaml's proxy.prices over it
// (a cache price left out is the input price).
func prices(cfg config.Proxy) usage.Prices {
	var over []usage.Price
	for model, p := range cfg.Prices {
		if p.Input == nil || p.Output == nil {
			continue // refused by validation
		}
		x := usage.Price{Model: model, Input: *p.Input, Output: *p.Output, CacheRead: *p.Input, CacheWrite: *p.Input, Date: "thesystem.yaml"}
		if p.CacheRead != nil {
			x.CacheRead = *p.CacheRead
		}
		if p.CacheWrite != nil {
			x.CacheWrite = *p.CacheWrite
		}
		over = append(over, x)
	}
	return usage.NewPrices(usage.DefaultPrices(), over...)
}

// record is the usage account's view of an audit record.
func record(r proxy.AuditRecord) usage.Record {
	return usage.Record{Time: r.Time, Agent: r.Agent, Provider: r.Provider, Model: r.Model,
		In: r.In, Out: r.Out, CacheRead: r.CacheRead, CacheWrite: r.CacheWrite, Refused: r.Refused}
}

// spent hears a request the proxy finished: into the account, and the
// events stream hears of it (at most once a second).
func (e *Engine) spent(r proxy.AuditRecord) {
	e.book.Add(record(r))
	e.workMu.Lock()
	defer e.workMu.Unlock()
	if e.spendTimer != nil {
		return // one is pending
	}
	e.spendTimer = time.AfterFunc(time.Second, func() {
		e.workMu.Lock()
		e.spendTimer = nil
		e.workMu.Unlock()
		e.workChanged()
	})
}

// carryBudgets gives the proxy what each agent spent in its budget's
// current period before this engine started (from the account), so that
// a restart does not reset a budget.
func (e *Engine) carryBudgets(now time.Time) {
	b := e.proxy.Budget()
	if b.Tokens <= 0 && b.Requests <= 0 {
		return
	}
	for _, a := range e.book.Report(now.Add(-b.Period), now, "").Agents {
		if since, c, ok := e.book.Period(a.Agent, b.Period, now); ok {
			e.proxy.SeedSpent(a.Agent, proxy.Spent{Since: since, Requests: c.Requests, Tokens: c.In + c.Out, Refused: c.Refused})
		}
	}
}

// startOfDay is the local midnight before t.
func startOfDay(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

// Usage is the account since since (zero: all of it), of one agent ("" for
// all), with each agent's budget; every agent of the stack has a line.
func (e *Engine) Usage(_ context.Context, since time.Time, agent string) (api.Usage, error) {
	var names []string
	for _, a := range e.agents() {
		names = append(names, a.Name)
	}
	now := time.Now()
	u := e.book.Report(since, now, agent)
	if agent != "" && !slices.Contains(names, agent) && len(u.Rows) == 0 {
		return api.Usage{}, api.Errorf(api.ErrNotFound, fmt.Sprintf("no agent %s in this stack (its agents: %s)", redact.Quote(agent), strings.Join(names, ", ")))
	}
	have := map[string]bool{}
	for _, a := range u.Agents {
		have[a.Agent] = true
	}
	for _, n := range names {
		if !have[n] && (agent == "" || agent == n) {
			u.Agents = append(u.Agents, api.AgentSpend{UsageRow: api.UsageRow{Agent: n}})
		}
	}
	slices.SortFunc(u.Agents, func(a, b api.AgentSpend) int { return strings.Compare(a.Agent, b.Agent) })
	for i := range u.Agents {
		u.Agents[i].Budget = e.budgetLeft(u.Agents[i].Agent, now)
	}
	return u, nil
}

// budgetLeft is what agent's budget leaves it now, nil without a budget.
func (e *Engine) budgetLeft(agent string, now time.Time) *api.BudgetLeft {
	b := e.proxy.Budget()
	if (b.Tokens <= 0 && b.Requests <= 0) || agent == proxy.UserName { // the user's own token is never limited
		return nil
	}
	left := &api.BudgetLeft{Tokens: b.Tokens, Requests: b.Requests, Resets: now.Add(b.Period)}
	if s, ok := e.proxy.Usage()[agent]; ok && now.Sub(s.Since) < b.Period {
		left.UsedTokens, left.UsedRequests, left.Resets = s.Tokens, s.Requests, s.Since.Add(b.Period)
	}
	return left
}

// today is each agent's spending since midnight, and everyone's (the
// user's own token's included).
func (e *Engine) today() (map[string]api.AgentSpend, api.UsageRow) {
	now := time.Now()
	u := e.book.Report(startOfDay(now), now, "")
	out := map[string]api.AgentSpend{}
	for _, a := range u.Agents {
		out[a.Agent] = a
	}
	return out, u.Total
}
