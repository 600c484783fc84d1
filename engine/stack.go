package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/thesystem-dev/thesystem/engine/component"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/supervise"
)

func (e *Engine) stackName() string {
	sum := sha256.Sum256([]byte(e.opt.Config.Dir))
	return hex.EncodeToString(sum[:3])
}

// agentSpec is one agent of the swarm: its name and the group it is in.
type agentSpec struct {
	Name  string
	Group config.BackendGroup
}

// agents expands the swarm's groups into agent-1…agent-N.
func (e *Engine) agents() []agentSpec {
	var out []agentSpec
	for _, g := range e.opt.Config.Config.Swarm.AgentGroups() {
		for range g.Count {
			out = append(out, agentSpec{Name: fmt.Sprintf("agent-%d", len(out)+1), Group: g})
		}
	}
	return out
}

// env is what the stack's components share.
func (e *Engine) env(logs *supervise.Logs) component.Env {
	return component.Env{Config: e.opt.Config, Paths: e.opt.Paths, Layout: e.layout, Stack: e.stackName(), Logs: logs, Version: e.opt.Version}
}

// sandboxSpecs is the container tier: podman (the host's, a service the
// engine runs, or the VM's), the chat server and the dashboard in
// containers, the swarm's image, and the agents, each in its own
// container.
func (e *Engine) sandboxSpecs(logs *supervise.Logs) []supervise.Spec {
	env := e.env(logs)
	swarm := &component.Swarm{Env: env, RuntimeBinary: e.opt.RuntimeBinary, DebianBase: e.opt.DebianBase,
		Foreign: e.opt.ForeignHost, Registry: e.opt.NPMRegistry}
	if g, ok := e.tier.(component.GuestImages); ok {
		swarm.Guest = g // in a VM, the image is made of the VM's own packages
	}
	chat := &component.Chat{Env: env, Prepare: e.tier.Prepare, Identities: e.ids, User: e.user}
	specs := []supervise.Spec{
		e.tier.Spec(),
		chat.Spec(),
		(&component.Dashboard{Env: env, Identities: e.ids, Team: team{e}}).Spec(),
		swarm.Spec(),
	}
	e.agentComps = map[string]*component.Agent{}
	for _, a := range e.agents() {
		agent := &component.Agent{Env: env, Name: a.Name, Backend: a.Group.Backend, Model: a.Group.Model, Swarm: swarm, Tokens: agentTokens{e}, Chat: e.user}
		if e.opt.Config.Config.Mode == config.ModeClient {
			agent.RemoteAway = chat.RemoteAway
		}
		e.agentComps[a.Name] = agent
		specs = append(specs, agent.Spec())
	}
	return specs
}

// agentTokens are the proxy's agent tokens, as the agents get them.
type agentTokens struct{ e *Engine }

func (t agentTokens) Issue(agent string) (string, error) { return t.e.proxy.Tokens().Issue(agent) }
func (t agentTokens) Revoke(agent string)                { t.e.proxy.Revoke(agent) }
