package usage

import (
	"sort"
	"strings"
)

// Price is what a model costs, in US dollars per million tokens: input,
// output, and cache reads and writes (where the provider prices them
// apart), as of Date.
type Price struct {
	Model                 string
	Input, Output         float64
	CacheRead, CacheWrite float64
	Date                  string
}

// PricesDate is when the built-in table was last checked against the
// providers' price pages.
const PricesDate = "2025-11-01"

// DefaultPrices are the providers' list prices for the models the agents
// use, as of PricesDate. A model that is not here has no price: its tokens
// are counted, its cost is not guessed. thesystem.yaml's proxy.prices adds
// or overrides models.
func DefaultPrices() []Price {
	d := PricesDate
	anthropic := func(model string, in, out float64) Price {
		// Anthropic: a cache write costs 1.25× the input, a read 0.1×.
		return Price{Model: model, Input: in, Output: out, CacheWrite: in * 1.25, CacheRead: in / 10, Date: d}
	}
	openai := func(model string, in, out, cached float64) Price {
		// OpenAI: cached input at its own price; writing the cache is free.
		return Price{Model: model, Input: in, Output: out, CacheRead: cached, CacheWrite: in, Date: d}
	}
	return []Price{
		anthropic("claude-opus-4-5", 5, 25),
		anthropic("claude-opus-4-1", 15, 75),
		anthropic("claude-opus-4", 15, 75),
		anthropic("claude-sonnet-4-5", 3, 15),
		anthropic("claude-sonnet-4", 3, 15),
		anthropic("claude-3-7-sonnet", 3, 15),
		anthropic("claude-3-5-sonnet", 3, 15),
		anthropic("claude-haiku-4-5", 1, 5),
		anthropic("claude-3-5-haiku", 0.8, 4),
		anthropic("claude-3-haiku", 0.25, 1.25),
		openai("gpt-5", 1.25, 10, 0.125),
		openai("gpt-5-codex", 1.25, 10, 0.125),
		openai("gpt-5-mini", 0.25, 2, 0.025),
		openai("gpt-5-nano", 0.05, 0.4, 0.005),
		openai("gpt-4.1", 2, 8, 0.5),
		openai("gpt-4.1-mini", 0.4, 1.6, 0.1),
		openai("gpt-4.1-nano", 0.1, 0.4, 0.025),
		openai("gpt-4o", 2.5, 10, 1.25),
		openai("gpt-4o-mini", 0.15, 0.6, 0.075),
		openai("o3", 2, 8, 0.5),
		openai("o4-mini", 1.1, 4.4, 0.275),
	}
}

// Prices finds a model's price.
type Prices struct {
	byModel map[string]Price
}

// NewPrices is the table of list, with overrides taking a model's place.
func NewPrices(list []Price, overrides ...Price) Prices {
	p := Prices{byModel: map[string]Price{}}
	for _, l := range [][]Price{list, overrides} {
		for _, x := range l {
			p.byModel[x.Model] = x
		}
	}
	return p
}

// For is model's price: the table's entry of that name, or of the name
// it is a dated release of ("claude-sonnet-4-5-20250929", "…@20250929",
// "…-latest"); anything else has none, whatever it starts with (a new
// model is not priced as an old one).
func (p Prices) For(model string) (Price, bool) {
	if x, ok := p.byModel[model]; ok {
		return x, true
	}
	// "-latest", "-20250929" or "@20250929", "-2024-08-06".
	for _, n := range []int{7, 9, 11} {
		if len(model) <= n {
			continue
		}
		base, suffix := model[:len(model)-n], model[len(model)-n:]
		if suffix == "-latest" || ((suffix[0] == '-' || suffix[0] == '@') && isDate(suffix[1:])) {
			if x, ok := p.byModel[base]; ok {
				return x, true
			}
		}
	}
	return Price{}, false
}

// Models lists the priced models, sorted.
func (p Prices) Models() []Price {
	out := make([]Price, 0, len(p.byModel))
	for _, x := range p.byModel {
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out
}

// isDate: eight digits (20250929), or a dash-separated date (2024-08-06).
func isDate(s string) bool {
	digits := strings.ReplaceAll(s, "-", "")
	if len(digits) != 8 || (len(s) != 8 && len(s) != 10) {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Cost is what c cost at p, in US dollars: input tokens that are not
// cache reads or writes at the input price, the cache's at theirs, output
// at the output price.
func (p Price) Cost(c Counts) float64 {
	plain := max(c.In-c.CacheRead-c.CacheWrite, 0)
	return (float64(plain)*p.Input + float64(c.CacheRead)*p.CacheRead + float64(c.CacheWrite)*p.CacheWrite + float64(c.Out)*p.Output) / 1e6
}
