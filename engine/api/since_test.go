package api

import (
	"strings"
	"testing"
	"time"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		err  string
	}{
		{"", time.Time{}, ""},
		{"24h", now.Add(-24 * time.Hour), ""},
		{"30m", now.Add(-30 * time.Minute), ""},
		{"7d", now.AddDate(0, 0, -7), ""},
		{"2026-12-01T09:00:00Z", time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), ""},
		{"yesterday", time.Time{}, `got "yesterday"`},
		{"-1h", time.Time{}, "duration back from now"},
		{"1w", time.Time{}, "7d"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSince(tc.in, now)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Errorf("%v %v, want %v", got, err, tc.want)
			}
		})
	}
}
