package proxy

import (
	"fmt"
	"sync"
	"time"
)

// Budget limits what each agent may spend per period; zero means no limit.
// The user token is never limited.
type Budget struct {
	Tokens   int64         `json:"tokens,omitempty"`
	Requests int64         `json:"requests,omitempty"`
	Period   time.Duration `json:"period,omitempty"`
}

func (b Budget) enabled() bool { return b.Tokens > 0 || b.Requests > 0 }

// Spent is one agent's consumption in the current period.
type Spent struct {
	Since    time.Time `json:"since"`
	Requests int64     `json:"requests"`
	Tokens   int64     `json:"tokens"`
	// Refused counts the requests refused because the budget was spent.
	Refused int64 `json:"refused,omitempty"`
}

// ledger counts each agent's requests and tokens against the budget.
type ledger struct {
	budget Budget
	now    func() time.Time

	mu    sync.Mutex
	spent map[string]*Spent
}

func newLedger(b Budget, now func() time.Time) *ledger {
	if b.Period <= 0 {
		b.Period = 24 * time.Hour
	}
	return &ledger{budget: b, now: now, spent: map[string]*Spent{}}
}

// budgetError is what an agent that spent its budget is told.
type budgetError struct {
	agent   string
	what    string
	used    int64
	limit   int64
	period  time.Duration
	resetAt time.Time
}

func (e *budgetError) Error() string {
	return fmt.Sprintf("agent %s has spent its budget: %d of %d %s in %s; it resets at %s",
		e.agent, e.used, e.limit, e.what, e.period, e.resetAt.UTC().Format(time.RFC3339))
}

func (l *ledger) current(agent string) *Spent {
	now := l.now()
	s := l.spent[agent]
	if s == nil || now.Sub(s.Since) >= l.budget.Period {
		s = &Spent{Since: now}
		l.spent[agent] = s
	}
	return s
}

// admit counts a request, or refuses it once the budget is spent.
func (l *ledger) admit(id Identity) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.current(id.Name)
	if !id.User && l.budget.enabled() {
		reset := s.Since.Add(l.budget.Period)
		if l.budget.Requests > 0 && s.Requests >= l.budget.Requests {
			s.Refused++
			return &budgetError{id.Name, "requests", s.Requests, l.budget.Requests, l.budget.Period, reset}
		}
		if l.budget.Tokens > 0 && s.Tokens >= l.budget.Tokens {
			s.Refused++
			return &budgetError{id.Name, "tokens", s.Tokens, l.budget.Tokens, l.budget.Period, reset}
		}
	}
	s.Requests++
	return nil
}

// charge adds a finished request's tokens.
func (l *ledger) charge(id Identity, u Usage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.current(id.Name).Tokens += u.In + u.Out
}

// seed sets an agent's consumption in its current period (what it spent
// before a restart).
func (l *ledger) seed(agent string, s Spent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.spent[agent] = &s
}

// snapshot copies every identity's consumption.
func (l *ledger) snapshot() map[string]Spent {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]Spent, len(l.spent))
	for k, v := range l.spent {
		out[k] = *v
	}
	return out
}
