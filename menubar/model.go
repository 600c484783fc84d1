package menubar

import (
	"fmt"
	"strings"

	"github.com/thesystem-dev/thesystem/engine/api"
)

// State is the stack at a glance: what the status icon shows.
type State string

// States, worst last.
const (
	StateStopped  State = "stopped"
	StateStarting State = "starting"
	StateHealthy  State = "healthy"
	StateDegraded State = "degraded"
	StateFailed   State = "failed"
)

// Overall folds the components' states into one: failed if any failed,
// degraded if any is degraded or restarting, starting while any starts,
// healthy when all are, stopped when none runs.
func Overall(st api.Status) State {
	if len(st.Components) == 0 {
		return StateStopped
	}
	var failed, degraded, starting, healthy, stopped int
	for _, c := range st.Components {
		switch c.State {
		case api.StateFailed:
			failed++
		case api.StateDegraded, api.StateRestarting:
			degraded++
		case api.StateStarting, api.StateStopping:
			starting++
		case api.StateHealthy:
			healthy++
		default:
			stopped++
		}
	}
	switch {
	case failed > 0:
		return StateFailed
	case degraded > 0:
		return StateDegraded
	case starting > 0:
		return StateStarting
	case healthy > 0 && stopped == 0:
		return StateHealthy
	case healthy > 0:
		return StateDegraded // some run, some do not
	default:
		return StateStopped
	}
}

// Tooltip is the status icon's tooltip: the overall state and the first
// component in trouble with its error.
func Tooltip(st api.Status) string {
	s := Overall(st)
	tip := "TheSystem: " + string(s)
	for _, c := range st.Components {
		if c.State == api.StateFailed || c.State == api.StateDegraded {
			why := c.LastError
			if why == "" {
				why = c.Detail
			}
			tip += fmt.Sprintf(" — %s %s", c.Name, c.State)
			if why != "" {
				tip += ": " + firstLine(why)
			}
			break
		}
	}
	return tip
}

// ComponentTitle is a component's menu line: a mark for its health, its
// name and state.
func ComponentTitle(c api.Component) string {
	return fmt.Sprintf("%s %s — %s", mark(c.State), c.Name, c.State)
}

// AgentTitle is an agent's line: its component's state, or what it
// says it does while its container is healthy.
func AgentTitle(c api.Component, a api.Agent) string {
	return agentState(c, a) + spendText(a.Today)
}

func agentState(c api.Component, a api.Agent) string {
	if c.State != api.StateHealthy || a.Work == "" {
		return ComponentTitle(c)
	}
	switch a.Work {
	case "working":
		return fmt.Sprintf("%s %s — working", mark(c.State), c.Name)
	case "needs you":
		return fmt.Sprintf("▲ %s — needs you", c.Name)
	}
	return fmt.Sprintf("%s %s — %s", mark(c.State), c.Name, a.Work)
}

// spendText is " · $0.12 today" (or the tokens, without a price), "" when
// nothing was spent.
func spendText(r *api.UsageRow) string {
	if r == nil || r.Tokens() == 0 {
		return ""
	}
	if c := r.CostText(); c != "-" {
		return " · " + c + " today"
	}
	return " · " + api.ShortCount(r.Tokens()) + " tokens today"
}

// TodayLine is the menu's line of what was spent today.
func TodayLine(st api.Status) string {
	t := st.Today
	if t == nil || t.Tokens() == 0 {
		return "Today: nothing spent yet"
	}
	if c := t.CostText(); c != "-" {
		return fmt.Sprintf("Today: %s (%s tokens)", c, api.ShortCount(t.Tokens()))
	}
	return fmt.Sprintf("Today: %s tokens (no price for their models)", api.ShortCount(t.Tokens()))
}

// BudgetWarning is what to tell the user of an agent past 80% of its
// budget (but not yet out of it: the proxy says that), and the period it
// is about; ok is false otherwise.
func BudgetWarning(a api.Agent) (period, text string, ok bool) {
	b := a.Budget
	if b == nil || b.Fraction() < 0.8 || b.Fraction() >= 1 {
		return "", "", false
	}
	var used []string
	if b.Tokens > 0 {
		used = append(used, fmt.Sprintf("%s of %s tokens", api.ShortCount(b.UsedTokens), api.ShortCount(b.Tokens)))
	}
	if b.Requests > 0 {
		used = append(used, fmt.Sprintf("%d of %d requests", b.UsedRequests, b.Requests))
	}
	return b.Resets.String(), fmt.Sprintf("%s has used %.0f%% of its budget (%s); it resets at %s",
		a.Name, 100*b.Fraction(), strings.Join(used, ", "), b.Resets.Local().Format("Jan 2 15:04")), true
}

// AgentWork is what an agent does, for its tooltip: the task and since
// when, the queue, or why it needs the user.
func AgentWork(a api.Agent) string {
	switch a.Work {
	case "working":
		s := fmt.Sprintf("working on %q since %s", a.Task, a.WorkSince.Local().Format("15:04"))
		if a.Queued > 0 {
			s += fmt.Sprintf(", %d queued", a.Queued)
		}
		return s
	case "needs you":
		return "needs you: " + a.Task
	}
	return ""
}

// ComponentTooltip is the error behind a component's state, or its detail.
func ComponentTooltip(c api.Component) string {
	if c.LastError != "" && c.State != api.StateHealthy {
		return c.LastError
	}
	return c.Detail
}

func mark(state string) string {
	switch state {
	case api.StateHealthy:
		return "●"
	case api.StateFailed:
		return "✕"
	case api.StateDegraded, api.StateRestarting:
		return "▲"
	case api.StateStarting, api.StateStopping:
		return "◌"
	default:
		return "○"
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	const max = 120
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
