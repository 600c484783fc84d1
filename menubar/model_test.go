package menubar

import (
	"bytes"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
)

func comps(states ...string) api.Status {
	var st api.Status
	for i, s := range states {
		st.Components = append(st.Components, api.Component{Name: []string{"agentauth-proxy", "vm", "agentchat-server", "agent-1"}[i], State: s})
	}
	return st
}

func TestOverall(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   api.Status
		want State
	}{
		{"nothing", api.Status{}, StateStopped},
		{"all stopped", comps("stopped", "stopped"), StateStopped},
		{"all healthy", comps("healthy", "healthy", "healthy"), StateHealthy},
		{"one starting", comps("healthy", "starting", "stopped"), StateStarting},
		{"one restarting", comps("healthy", "restarting", "healthy"), StateDegraded},
		{"half up", comps("healthy", "stopped"), StateDegraded},
		{"one failed wins", comps("healthy", "degraded", "failed"), StateFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Overall(tc.st); got != tc.want {
				t.Errorf("Overall = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestTooltipAndTitles(t *testing.T) {
	st := comps("healthy", "failed")
	st.Components[1].LastError = "VM thesystem-abc is broken (DEGRADED)\nmore"
	if tip := Tooltip(st); tip != "TheSystem: failed — vm failed: VM thesystem-abc is broken (DEGRADED)" {
		t.Errorf("tooltip %q", tip)
	}
	if got := ComponentTitle(st.Components[1]); got != "✕ vm — failed" {
		t.Errorf("title %q", got)
	}
	if got := ComponentTooltip(st.Components[1]); !strings.HasPrefix(got, "VM thesystem-abc") {
		t.Errorf("component tooltip %q", got)
	}
	if got := ComponentTitle(st.Components[0]); got != "● agentauth-proxy — healthy" {
		t.Errorf("title %q", got)
	}
}

// TestIcons: each state has its own icon, a valid 22×22 PNG.
func TestIcons(t *testing.T) {
	seen := map[string]State{}
	for _, s := range []State{StateStopped, StateStarting, StateHealthy, StateDegraded, StateFailed} {
		b := Icon(s)
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil || img.Bounds().Dx() != 22 || img.Bounds().Dy() != 22 {
			t.Fatalf("%s: %v %v", s, err, img.Bounds())
		}
		if other, dup := seen[string(b)]; dup {
			t.Errorf("%s and %s share an icon", s, other)
		}
		seen[string(b)] = s
	}
}

// TestSpendLines: each agent's line says what it spent today, the Today
// line everyone's; a budget past 80% (not spent yet) is a warning once
// per period.
func TestSpendLines(t *testing.T) {
	cost := func(v float64) *float64 { return &v }
	c := api.Component{Name: "agent-1", State: api.StateHealthy}
	for _, tc := range []struct {
		name  string
		today *api.UsageRow
		title string
	}{
		{"nothing", nil, "● agent-1 — idle"},
		{"priced", &api.UsageRow{TokensIn: 12000, TokensOut: 300, CostUSD: cost(0.1234)}, "● agent-1 — idle · $0.12 today"},
		{"unpriced", &api.UsageRow{TokensIn: 900, TokensOut: 300}, "● agent-1 — idle · 1.2k tokens today"},
		{"partly", &api.UsageRow{TokensIn: 900, CostUSD: cost(0.5), CostPartial: true}, "● agent-1 — idle · ≥ $0.50 today"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := AgentTitle(c, api.Agent{Name: "agent-1", Work: "idle", Today: tc.today}); got != tc.title {
				t.Errorf("%q, want %q", got, tc.title)
			}
		})
	}
	for _, tc := range []struct {
		today *api.UsageRow
		want  string
	}{
		{nil, "Today: nothing spent yet"},
		{&api.UsageRow{TokensIn: 1_200_000, TokensOut: 34_000, CostUSD: cost(4.2)}, "Today: $4.20 (1.23M tokens)"},
		{&api.UsageRow{TokensIn: 100}, "Today: 100 tokens (no price for their models)"},
	} {
		if got := TodayLine(api.Status{Today: tc.today}); got != tc.want {
			t.Errorf("TodayLine %+v = %q, want %q", tc.today, got, tc.want)
		}
	}
	resets := time.Date(2026, 12, 3, 9, 0, 0, 0, time.Local)
	for _, tc := range []struct {
		used int64
		warn bool
	}{{7999, false}, {8000, true}, {9999, true}, {10000, false}} {
		a := api.Agent{Name: "agent-1", Budget: &api.BudgetLeft{Tokens: 10000, UsedTokens: tc.used, Resets: resets}}
		_, text, ok := BudgetWarning(a)
		if ok != tc.warn || (ok && !strings.Contains(text, "agent-1 has used") || ok && !strings.Contains(text, "of 10.0k tokens); it resets at Dec 3 09:00")) {
			t.Errorf("used %d: %v %q", tc.used, ok, text)
		}
	}
}
