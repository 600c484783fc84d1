package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseSince reads a usage period's start: "" (all), a duration back from
// now (30m, 24h, 7d), or an RFC 3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && n <= 36500 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("since must be a duration back from now (30m, 24h, 7d) or a time like 2026-12-01T09:00:00Z, got %q", s)
}
