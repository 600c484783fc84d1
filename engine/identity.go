package engine

import (
	"crypto/ed25519"
	"fmt"
	"path/filepath"

	"github.com/thesystem-dev/thesystem/engine/chat"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
)

// The chat names of the identities the engine issues besides the agents'.
const (
	userChatName      = "user"
	dashboardChatName = "dashboard"
)

// issueIdentities makes the chat identities for a run of the embedded
// chat server when server.allowlist is on: the user's and the
// dashboard's (kept in the state dir, 0600: a file that never changes is
// never served stale by the VM's sshfs cache) and each agent's (new for
// each run of the chat server, which its restart takes the agents
// through, delivered in a token dir of that run's own), and returns
// the server's --allow arguments: public keys only. An agent's private
// key waits in memory for the agent's own token dir; the dashboard's goes
// in a dir that only the dashboard's container mounts.
func (e *Engine) issueIdentities() ([]string, error) {
	cfg, paths := e.opt.Config.Config, e.opt.Paths
	if !cfg.Server.Allowlist || cfg.Server.Chat == config.ChatUpstream {
		e.chatKeys.Store(nil)
		return nil, nil
	}
	user, err := chat.LoadOrCreateKey(paths.UserIdentity())
	if err != nil {
		return nil, err
	}
	dash, err := chat.LoadOrCreateKey(paths.DashboardIdentity())
	if err != nil {
		return nil, err
	}
	uid, gid := e.tokenOwner()
	dir := paths.DashboardIdentityDir()
	if err := mkdirOwned(dir, uid, gid); err != nil {
		return nil, fmt.Errorf("the dashboard's identity: %w", err)
	}
	if err := chat.WriteKey(filepath.Join(dir, sandbox.IdentityFile), dash, 0o400, uid, gid); err != nil {
		return nil, fmt.Errorf("the dashboard's identity: %w", err)
	}
	args := []string{"--allow", userChatName + "=" + chat.PublicText(user), "--allow", dashboardChatName + "=" + chat.PublicText(dash),
		// Nothing said to an agent is hidden from the user.
		"--observer", userChatName, "--observer", dashboardChatName}
	keys := map[string]ed25519.PrivateKey{}
	for _, a := range e.agents() {
		k, err := chat.NewKey()
		if err != nil {
			return nil, err
		}
		keys[a.Name] = k
		args = append(args, "--allow", a.Name+"="+chat.PublicText(k))
	}
	e.chatKeys.Store(&keys)
	return args, nil
}

// agentChatKey is the agent's chat key for this run of the chat server;
// nil without an allowlist.
func (e *Engine) agentChatKey(name string) ed25519.PrivateKey {
	keys := e.chatKeys.Load()
	if keys == nil {
		return nil
	}
	return (*keys)[name]
}
