// Package api is the engine's local API: HTTP/JSON over a unix socket that
// the CLI and the menu bar talk to (server.go), its Go client (client.go),
// and the wire types and errors both sides share. The names of the
// components the API addresses are fixed here so every transport validates
// them the same way.
package api

import (
	"fmt"
	"sort"
	"strings"

	"github.com/thesystem-dev/thesystem/engine/redact"
)

// Component names, as shown by `status` and accepted by `logs` and
// `restart`.
const (
	ComponentProxy     = "agentauth-proxy"
	ComponentVM        = "vm"
	ComponentChat      = "agentchat-server"
	ComponentDashboard = "dashboard"
	ComponentSwarm     = "swarm"
)

// Components lists the components in start order.
func Components() []string {
	return []string{ComponentProxy, ComponentVM, ComponentChat, ComponentDashboard, ComponentSwarm}
}

// componentAliases are the short names users type (the seed's among them).
func componentAliases() map[string]string {
	return map[string]string{
		"proxy": ComponentProxy, "agentauth": ComponentProxy,
		"chat": ComponentChat, "server": ComponentChat, "agentchat": ComponentChat,
		"dash": ComponentDashboard, "agents": ComponentSwarm,
	}
}

// ParseComponent resolves a component name or alias.
func ParseComponent(s string) (string, error) {
	for _, c := range Components() {
		if s == c {
			return c, nil
		}
	}
	aliases := componentAliases()
	if c, ok := aliases[s]; ok {
		return c, nil
	}
	names := Components()
	for a := range aliases {
		names = append(names, a)
	}
	sort.Strings(names)
	return "", fmt.Errorf("unknown component %s (one of: %s)", redact.Quote(s), strings.Join(names, ", "))
}
