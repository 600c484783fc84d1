package api

import (
	"strings"
	"testing"
)

func TestParseComponent(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"agentauth-proxy", ComponentProxy, ""},
		{"proxy", ComponentProxy, ""},
		{"server", ComponentChat, ""},
		{"chat", ComponentChat, ""},
		{"dashboard", ComponentDashboard, ""},
		{"swarm", ComponentSwarm, ""},
		{"vm", ComponentVM, ""},
		{"database", "", `unknown component "database" (one of: agentauth, agentauth-proxy,`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseComponent(tc.in)
			if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.HasPrefix(err.Error(), tc.err)) {
				t.Errorf("ParseComponent(%q) = %q, %v", tc.in, got, err)
			}
		})
	}
}
