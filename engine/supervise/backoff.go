package supervise

import (
	"math/rand/v2"
	"time"
)

// Backoff is the restart policy of a component.
type Backoff struct {
	// Initial is the delay before the first restart, doubled for each
	// consecutive crash up to Max, then spread by ±Jitter (a fraction).
	Initial time.Duration
	Max     time.Duration
	Jitter  float64
	// StableAfter is the uptime after which the crash count resets.
	StableAfter time.Duration
	// MaxCrashes consecutive crashes make the component failed.
	MaxCrashes int
}

// DefaultBackoff: 0.5 s, 1 s, 2 s … up to 30 s, ±20 %; five crashes in a
// row without a minute of uptime and the component is failed.
func DefaultBackoff() Backoff {
	return Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Jitter: 0.2, StableAfter: time.Minute, MaxCrashes: 5}
}

func (b Backoff) withDefaults() Backoff {
	d := DefaultBackoff()
	if b.Initial <= 0 {
		b.Initial = d.Initial
	}
	if b.Max <= 0 {
		b.Max = d.Max
	}
	if b.StableAfter <= 0 {
		b.StableAfter = d.StableAfter
	}
	if b.MaxCrashes <= 0 {
		b.MaxCrashes = d.MaxCrashes
	}
	return b
}

// Delay is the wait before restart number crash (1-based).
func (b Backoff) Delay(crash int) time.Duration {
	d := b.Initial
	for i := 1; i < crash && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if b.Jitter > 0 {
		d = time.Duration(float64(d) * (1 + b.Jitter*(2*rand.Float64()-1)))
	}
	return d
}
