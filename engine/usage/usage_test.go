package usage

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPricesFor(t *testing.T) {
	p := NewPrices(DefaultPrices(), Price{Model: "my-model", Input: 1, Output: 2, Date: "thesystem.yaml"},
		Price{Model: "claude-haiku-4-5", Input: 9, Output: 9, Date: "thesystem.yaml"})
	for _, tc := range []struct {
		model string
		want  string // the entry's name, "" for none
		in    float64
	}{
		{"claude-sonnet-4-5", "claude-sonnet-4-5", 3},
		{"claude-sonnet-4-5-20250929", "claude-sonnet-4-5", 3},
		{"claude-sonnet-4-20250514", "claude-sonnet-4", 3},
		{"claude-opus-4-5@20251101", "claude-opus-4-5", 5},
		{"claude-3-5-haiku-latest", "claude-3-5-haiku", 0.8},
		{"gpt-4o-2024-08-06", "gpt-4o", 2.5},
		{"gpt-4o-mini", "gpt-4o-mini", 0.15},
		{"my-model", "my-model", 1},
		{"claude-haiku-4-5", "claude-haiku-4-5", 9}, // overridden
		// Not guessed from a name it starts with:
		{"claude-sonnet-4-7", "", 0},
		{"claude-sonnet-4-5-experimental", "", 0},
		{"gpt-5.1", "", 0},
		{"gemini-2.5-pro", "", 0},
		{"", "", 0},
	} {
		t.Run(tc.model, func(t *testing.T) {
			x, ok := p.For(tc.model)
			if ok != (tc.want != "") || x.Model != tc.want || x.Input != tc.in {
				t.Errorf("For(%q) = %+v %v, want %q", tc.model, x, ok, tc.want)
			}
		})
	}
}

func TestCost(t *testing.T) {
	p, _ := NewPrices(DefaultPrices()).For("claude-sonnet-4-5")
	// 1M input of which 200k cache reads and 100k cache writes, 100k out:
	// 700k×3 + 200k×0.3 + 100k×3.75 + 100k×15, per million.
	got := p.Cost(Counts{In: 1_000_000, CacheRead: 200_000, CacheWrite: 100_000, Out: 100_000})
	if want := 2.1 + 0.06 + 0.375 + 1.5; math.Abs(got-want) > 1e-9 {
		t.Errorf("cost %v, want %v", got, want)
	}
}

// TestBookReport: requests add up per agent, provider and model, and in
// total; cost for a priced model, none for an unknown one (its tokens
// counted, the total marked partial); refused requests apart; since and
// agent select; what is not an agent's spending is left out.
func TestBookReport(t *testing.T) {
	b := NewBook(NewPrices(DefaultPrices()))
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	add := func(min int, agent, model string, in, out int64, refused string) {
		b.Add(Record{Time: t0.Add(time.Duration(min) * time.Minute), Agent: agent, Provider: "anthropic", Model: model, In: in, Out: out, Refused: refused})
	}
	for i := range 3 {
		add(i, "agent-1", "claude-sonnet-4-5-20250929", 1000, 100, "")
	}
	add(5, "agent-2", "claude-sonnet-4-5-20250929", 2000, 200, "")
	add(90, "agent-2", "mystery-model", 500, 50, "")
	add(91, "agent-2", "", 0, 0, RefusedBudget)
	b.Add(Record{Time: t0, Agent: "agent-1", Refused: "authentication_error"})        // no provider: not spending
	b.Add(Record{Time: t0, Agent: "agent-1", Provider: "agentauth"})                  // its own usage query
	b.Add(Record{Time: t0, Provider: "anthropic", Model: "claude-sonnet-4-5", In: 9}) // no agent
	if u := b.Report(time.Time{}, t0.Add(2*time.Hour), ""); u.Total.Requests+u.Total.Refused != 6 {
		t.Errorf("%d records counted, want 6", u.Total.Requests+u.Total.Refused)
	}

	u := b.Report(time.Time{}, t0.Add(2*time.Hour), "")
	if len(u.Rows) != 4 {
		t.Fatalf("rows: %+v", u.Rows)
	}
	r := u.Rows[0]
	if r.Agent != "agent-1" || r.Requests != 3 || r.TokensIn != 3000 || r.TokensOut != 300 || r.CostUSD == nil ||
		math.Abs(*r.CostUSD-(3000*3+300*15)/1e6) > 1e-12 {
		t.Errorf("agent-1: %+v", r)
	}
	if m := u.Rows[3]; m.Model != "mystery-model" || m.CostUSD != nil || !m.CostPartial || m.TokensIn != 500 {
		t.Errorf("unknown model: %+v", m)
	}
	if u.Total.Requests != 5 || u.Total.Refused != 1 || u.Total.TokensIn != 5500 || u.Total.TokensOut != 550 || !u.Total.CostPartial ||
		u.Total.CostUSD == nil || math.Abs(*u.Total.CostUSD-(5000*3+500*15)/1e6) > 1e-12 {
		t.Errorf("total: %+v", u.Total)
	}
	if strings.Join(u.Unpriced, ",") != "mystery-model" || len(u.Agents) != 2 || u.Agents[1].Requests != 2 || u.Agents[1].Refused != 1 {
		t.Errorf("unpriced %v, agents %+v", u.Unpriced, u.Agents)
	}
	if u := b.Report(t0.Add(30*time.Minute), t0.Add(2*time.Hour), ""); u.Total.Requests != 1 || u.Total.Refused != 1 {
		t.Errorf("since 30 min: %+v", u.Total)
	}
	if u := b.Report(time.Time{}, t0.Add(2*time.Hour), "agent-1"); len(u.Rows) != 1 || u.Total.Requests != 3 {
		t.Errorf("agent-1 only: %+v", u)
	}
	s := b.Series(t0, t0.Add(5*time.Minute), time.Minute, "")
	if len(s) != 6 || s[0] != 1100 || s[2] != 1100 || s[3] != 0 || s[5] != 2200 {
		t.Errorf("series %v", s)
	}
}

// TestLoadAuditLog: the book is rebuilt from the audit log's files, the
// rotated one first; a damaged line is skipped with a warning naming the
// file and line, never a failure; a missing file is none.
func TestLoadAuditLog(t *testing.T) {
	dir := t.TempDir()
	rec := func(min int, agent string) string {
		return `{"time":"2026-12-01T10:0` + string(rune('0'+min)) + `:00Z","agent":"` + agent +
			`","method":"POST","provider":"anthropic","path":"/anthropic/v1/messages","model":"claude-sonnet-4-5","status":200,"tokens_in":10,"tokens_out":5}`
	}
	cur := filepath.Join(dir, "audit.jsonl")
	if err := os.WriteFile(cur+".1", []byte(rec(1, "agent-1")+"\n"+rec(2, "agent-1")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cur, []byte(rec(3, "agent-2")+"\n{\"time\": broken\n\n"+rec(4, "agent-2")+"\n"+`{"agent":"x"}`+"\n"+rec(5, "agent-2")[:40]), 0o600); err != nil {
		t.Fatal(err)
	}
	b := NewBook(NewPrices(DefaultPrices()))
	var warnings []string
	if err := b.Load([]string{filepath.Join(dir, "audit.jsonl.2"), cur + ".1", cur}, func(s string) { warnings = append(warnings, s) }); err != nil {
		t.Fatal(err)
	}
	u := b.Report(time.Time{}, time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), "")
	if u.Total.Requests != 4 || u.Total.TokensIn != 40 {
		t.Errorf("total %+v", u.Total)
	}
	if len(warnings) != 3 || !strings.HasPrefix(warnings[0], cur+":2: not an audit record") || !strings.HasPrefix(warnings[1], cur+":5:") || !strings.HasPrefix(warnings[2], cur+":6:") {
		t.Errorf("warnings %q", warnings)
	}
}

// TestBookPeriod: an agent's budget period, as the proxy's ledger keeps
// it, is found again from the account: it begins with the first request
// after the last period ended.
func TestBookPeriod(t *testing.T) {
	b := NewBook(NewPrices(nil))
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(h float64, in int64) {
		b.Add(Record{Time: t0.Add(time.Duration(h * float64(time.Hour))), Agent: "agent-1", Provider: "anthropic", In: in})
	}
	at(0, 1)  // period 1: 0h..24h
	at(20, 2) // in it
	at(30, 4) // period 2: 30h..54h
	at(31, 8)
	since, c, ok := b.Period("agent-1", 24*time.Hour, t0.Add(40*time.Hour))
	if !ok || !since.Equal(t0.Add(30*time.Hour)) || c.In != 12 || c.Requests != 2 {
		t.Errorf("at 40h: %v %+v %v", since, c, ok)
	}
	if _, _, ok := b.Period("agent-1", 24*time.Hour, t0.Add(60*time.Hour)); ok {
		t.Error("a period at 60h")
	}
	if _, _, ok := b.Period("agent-2", 24*time.Hour, t0.Add(40*time.Hour)); ok {
		t.Error("a period for an agent with no requests")
	}
}

// TestBookCompacts: what is older than two days is kept by the hour, and
// adds up the same.
func TestBookCompacts(t *testing.T) {
	b := NewBook(NewPrices(DefaultPrices()))
	old := time.Now().Add(-72 * time.Hour).Truncate(time.Hour)
	for i := range 120 {
		b.Add(Record{Time: old.Add(time.Duration(i) * time.Minute), Agent: "agent-1", Provider: "anthropic", Model: "m", In: 1})
	}
	recent := time.Now().Add(-time.Hour)
	b.Add(Record{Time: recent, Agent: "agent-1", Provider: "anthropic", Model: "m", In: 1})
	b.mu.Lock()
	n := len(b.minutes)
	b.mu.Unlock()
	if n != 3 {
		t.Errorf("%d buckets, want 2 hours and a minute", n)
	}
	if u := b.Report(time.Time{}, time.Now(), ""); u.Total.Requests != 121 || u.Total.TokensIn != 121 {
		t.Errorf("total %+v", u.Total)
	}
}

// BenchmarkLoad rebuilds the account from an audit log of 100,000 lines,
// beside the baseline of only decoding them.
func BenchmarkLoad(b *testing.B) {
	var log bytes.Buffer
	t0 := time.Now().Add(-30 * 24 * time.Hour)
	for i := range 100_000 {
		fmt.Fprintf(&log, `{"time":%q,"agent":"agent-%d","method":"POST","provider":"anthropic","path":"/anthropic/v1/messages","model":"claude-sonnet-4-5","status":200,"bytes_in":900,"bytes_out":2000,"duration_ms":812.5,"tokens_in":1200,"tokens_out":300}`+"\n",
			t0.Add(time.Duration(i)*26*time.Second).UTC().Format(time.RFC3339Nano), i%4)
	}
	b.Run("decode only", func(b *testing.B) {
		for b.Loop() {
			sc := bufio.NewScanner(bytes.NewReader(log.Bytes()))
			for sc.Scan() {
				var r Record
				_ = json.Unmarshal(sc.Bytes(), &r)
			}
		}
	})
	b.Run("load", func(b *testing.B) {
		for b.Loop() {
			bk := NewBook(NewPrices(DefaultPrices()))
			if err := bk.load(bytes.NewReader(log.Bytes()), "audit.log", nil); err != nil {
				b.Fatal(err)
			}
			bk.mu.Lock()
			bk.compact(time.Now())
			b.ReportMetric(float64(len(bk.minutes)), "buckets")
			bk.mu.Unlock()
		}
	})
}
