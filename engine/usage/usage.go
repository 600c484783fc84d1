// Package usage keeps the account of what the agents spent: requests and
// tokens per agent, provider and model, minute by minute, with an
// estimated cost from a price table. The proxy's audit log is its record:
// the book is rebuilt from it at start (a damaged line is skipped with a
// warning), then fed each request as the proxy finishes it.
package usage

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
)

// Record is one request as the audit log has it (the fields the account
// needs).
type Record struct {
	Time       time.Time `json:"time"`
	Agent      string    `json:"agent"`
	Provider   string    `json:"provider"`
	Model      string    `json:"model"`
	In         int64     `json:"tokens_in"`
	Out        int64     `json:"tokens_out"`
	CacheRead  int64     `json:"cache_read_tokens"`
	CacheWrite int64     `json:"cache_write_tokens"`
	Refused    string    `json:"refused"`
}

// Counts are a bucket's requests and tokens.
type Counts struct {
	Requests, Refused              int64
	In, Out, CacheRead, CacheWrite int64
}

func (c *Counts) add(o Counts) {
	c.Requests += o.Requests
	c.Refused += o.Refused
	c.In += o.In
	c.Out += o.Out
	c.CacheRead += o.CacheRead
	c.CacheWrite += o.CacheWrite
}

// key is a row of the account.
type key struct{ agent, provider, model string }

// Book is the account. Its methods are safe for concurrent use.
type Book struct {
	prices Prices

	mu      sync.Mutex
	minutes map[int64]map[key]*Counts // by the minute's Unix time (or the hour's, past two days)
	adds    uint64                    // records counted, for compacting now and then
}

// NewBook is an empty account priced by prices.
func NewBook(prices Prices) *Book {
	return &Book{prices: prices, minutes: map[int64]map[key]*Counts{}}
}

// RefusedBudget is the audit log's mark of a request refused because its
// agent's budget was spent.
const RefusedBudget = "budget_exceeded"

// Add counts a request, or one refused for the agent's budget (as
// refused: it reached no provider). Other refusals (a bad token, no key,
// a page's request) and the agents' questions to the proxy itself are not
// spending, and are left out.
func (b *Book) Add(r Record) {
	if r.Agent == "" || r.Provider == "" || r.Provider == "agentauth" || (r.Refused != "" && r.Refused != RefusedBudget) {
		return
	}
	c := Counts{In: r.In, Out: r.Out, CacheRead: r.CacheRead, CacheWrite: r.CacheWrite}
	if r.Refused != "" {
		c.Refused = 1
	} else {
		c.Requests = 1
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	// Minute by minute for the last two days, by the hour before: the
	// account of months of work stays small.
	bucket := time.Minute
	if time.Since(r.Time) > minuteDetail {
		bucket = time.Hour
	}
	m := r.Time.Truncate(bucket).Unix()
	rows := b.minutes[m]
	if rows == nil {
		rows = map[key]*Counts{}
		b.minutes[m] = rows
	}
	k := key{r.Agent, r.Provider, r.Model}
	if rows[k] == nil {
		rows[k] = &Counts{}
	}
	rows[k].add(c)
	if b.adds++; b.adds%4096 == 0 {
		b.compact(time.Now())
	}
}

// minuteDetail is how far back the account keeps minutes.
const minuteDetail = 48 * time.Hour

// compact folds the minutes older than minuteDetail into their hours.
func (b *Book) compact(now time.Time) {
	for m, rows := range b.minutes {
		t := time.Unix(m, 0)
		if now.Sub(t) <= minuteDetail || t.Truncate(time.Hour).Equal(t) {
			continue
		}
		h := t.Truncate(time.Hour).Unix()
		into := b.minutes[h]
		if into == nil {
			into = map[key]*Counts{}
			b.minutes[h] = into
		}
		for k, c := range rows {
			if into[k] == nil {
				into[k] = &Counts{}
			}
			into[k].add(*c)
		}
		delete(b.minutes, m)
	}
}

// Load adds the records of the audit log files, oldest first. A line that
// is not a record is skipped and warn is told its file and line; a file
// that does not exist is none.
func (b *Book) Load(files []string, warn func(string)) error {
	for _, name := range files {
		f, err := os.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("usage: %w", err)
		}
		err = b.load(f, name, warn)
		_ = f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *Book) load(r io.Reader, name string, warn func(string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil || rec.Time.IsZero() {
			if warn != nil {
				if err == nil {
					err = errors.New("no time")
				}
				warn(fmt.Sprintf("%s:%d: not an audit record, skipped (%v)", name, n, err))
			}
			continue
		}
		b.Add(rec)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("usage: %s: %w", name, err)
	}
	return nil
}

// Report is the account since since (zero: all of it), of one agent
// ("" for all), at now.
func (b *Book) Report(since, now time.Time, agent string) api.Usage {
	b.mu.Lock()
	sums := map[key]*Counts{}
	for m, rows := range b.minutes {
		if !since.IsZero() && time.Unix(m, 0).Add(time.Minute).Before(since.Add(time.Nanosecond)) {
			continue // the minute ended before since
		}
		for k, c := range rows {
			if agent != "" && k.agent != agent {
				continue
			}
			if sums[k] == nil {
				sums[k] = &Counts{}
			}
			sums[k].add(*c)
		}
	}
	b.mu.Unlock()

	u := api.Usage{Since: since, Until: now, PricesDate: PricesDate}
	agents := map[string]*api.AgentSpend{}
	unpriced := map[string]bool{}
	for k, c := range sums {
		row := api.UsageRow{Agent: k.agent, Provider: k.provider, Model: k.model}
		fill(&row, *c)
		if p, ok := b.prices.For(k.model); ok && k.model != "" {
			cost := p.Cost(*c)
			row.CostUSD = &cost
		} else if c.In+c.Out > 0 {
			unpriced[k.model] = true
			row.CostPartial = true
		}
		u.Rows = append(u.Rows, row)
		a := agents[k.agent]
		if a == nil {
			a = &api.AgentSpend{UsageRow: api.UsageRow{Agent: k.agent}}
			agents[k.agent] = a
		}
		sum(&a.UsageRow, row)
		sum(&u.Total, row)
	}
	sort.Slice(u.Rows, func(i, j int) bool {
		a, b := u.Rows[i], u.Rows[j]
		if a.Agent != b.Agent {
			return a.Agent < b.Agent
		}
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		return a.Model < b.Model
	})
	for _, a := range agents {
		u.Agents = append(u.Agents, *a)
	}
	sort.Slice(u.Agents, func(i, j int) bool { return u.Agents[i].Agent < u.Agents[j].Agent })
	for m := range unpriced {
		if m == "" {
			m = "(no model named)"
		}
		u.Unpriced = append(u.Unpriced, m)
	}
	sort.Strings(u.Unpriced)
	return u
}

// Period is agent's consumption in its budget's current period, as the
// proxy's ledger keeps it: a period begins with the first request after
// the last one ended and lasts period; ok is false when none is running
// at now. (At a minute's precision: what a restarted proxy carries on.)
func (b *Book) Period(agent string, period time.Duration, now time.Time) (since time.Time, c Counts, ok bool) {
	b.mu.Lock()
	var mins []int64
	per := map[int64]Counts{}
	for m, rows := range b.minutes {
		for k, x := range rows {
			if k.agent == agent {
				if _, seen := per[m]; !seen {
					mins = append(mins, m)
				}
				sum := per[m]
				sum.add(*x)
				per[m] = sum
			}
		}
	}
	b.mu.Unlock()
	sort.Slice(mins, func(i, j int) bool { return mins[i] < mins[j] })
	for _, m := range mins {
		t := time.Unix(m, 0)
		if !ok || !t.Before(since.Add(period)) {
			since, c, ok = t, Counts{}, true
		}
		c.add(per[m])
	}
	if !ok || !now.Before(since.Add(period)) {
		return time.Time{}, Counts{}, false
	}
	return since, c, true
}

// Series is the tokens (in and out) per step since since, oldest first,
// one point per step up to now (zero where nothing was spent).
func (b *Book) Series(since, now time.Time, step time.Duration, agent string) []int64 {
	if step < time.Minute {
		step = time.Minute
	}
	start := since.Truncate(step)
	n := int(now.Sub(start)/step) + 1
	if n <= 0 || n > 100000 {
		return nil
	}
	out := make([]int64, n)
	b.mu.Lock()
	defer b.mu.Unlock()
	for m, rows := range b.minutes {
		t := time.Unix(m, 0)
		if t.Before(start) || t.After(now) {
			continue
		}
		i := int(t.Sub(start) / step)
		for k, c := range rows {
			if agent == "" || k.agent == agent {
				out[i] += c.In + c.Out
			}
		}
	}
	return out
}

func fill(r *api.UsageRow, c Counts) {
	r.Requests, r.Refused = c.Requests, c.Refused
	r.TokensIn, r.TokensOut, r.CacheRead, r.CacheWrite = c.In, c.Out, c.CacheRead, c.CacheWrite
}

// sum adds row to total: counts, and the cost of what has one (partial
// when some of it has none).
func sum(total *api.UsageRow, row api.UsageRow) {
	total.Requests += row.Requests
	total.Refused += row.Refused
	total.TokensIn += row.TokensIn
	total.TokensOut += row.TokensOut
	total.CacheRead += row.CacheRead
	total.CacheWrite += row.CacheWrite
	if row.CostUSD != nil {
		c := *row.CostUSD
		if total.CostUSD != nil {
			c += *total.CostUSD
		}
		total.CostUSD = &c
	}
	total.CostPartial = total.CostPartial || row.CostPartial
}
