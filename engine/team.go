package engine

import (
	"context"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/dashboard"
)

// team is the engine as the dashboard's front sees it: read-only, but for
// the user's own messages.
type team struct{ e *Engine }

// Team is the stack's health, the agents, today's spending and the last
// hour's tokens per minute.
func (t team) Team(ctx context.Context) (dashboard.Team, error) {
	now := time.Now()
	u, err := t.e.Usage(ctx, startOfDay(now), "")
	if err != nil {
		return dashboard.Team{}, err
	}
	start := now.Add(-59 * time.Minute).Truncate(time.Minute)
	return dashboard.Team{Status: t.e.Status(), Usage: u, Series: t.e.book.Series(start, now, time.Minute, ""), SeriesStart: start}, nil
}

// WatchTeam hears the engine's changes: components, agents' work, spend.
func (t team) WatchTeam() (<-chan struct{}, func()) {
	_, ch, stop := t.e.Subscribe()
	out := make(chan struct{}, 1)
	go func() {
		for range ch {
			select {
			case out <- struct{}{}:
			default:
			}
		}
	}()
	return out, stop
}

// AgentLog is an agent's last n lines (agents only: the page shows no
// other component's log).
func (t team) AgentLog(agent string, n int) ([]api.LogLine, error) {
	if _, err := t.e.agentComp(agent); err != nil {
		return nil, err
	}
	return t.e.Logs(agent, n)
}

// Say posts as the user.
func (t team) Say(ctx context.Context, to, text string) error { return t.e.ChatSend(ctx, to, text) }
