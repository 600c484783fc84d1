package engine

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/thesystem-dev/thesystem/engine/chat"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/guest"
)

// The chat names of the identities the engine issues besides the agents'.
const (
	userChatName      = "user"
	dashboardChatName = "dashboard"
)

// issueIdentities makes the chat identities for a run of the embedded
// chat server when server.allowlist is on, the user's and the dashboard's
// (kept in the state dir, 0600: a file that never changes is never served
// stale by the VM's sshfs cache), and returns the server's arguments:
// public keys only, the user as the admin that admits each run of an
// agent (admitAgent). The dashboard's private key goes in a dir that only
// the dashboard's container mounts.
func (e *Engine) issueIdentities() ([]string, error) {
	cfg, paths := e.opt.Config.Config, e.opt.Paths
	if !cfg.Server.Allowlist || cfg.Server.Chat == config.ChatUpstream {
		e.chatAdmin.Store(nil)
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
	if err := chat.WriteKey(filepath.Join(dir, guest.IdentityFile), dash, 0o400, uid, gid); err != nil {
		return nil, fmt.Errorf("the dashboard's identity: %w", err)
	}
	e.chatAdmin.Store(&user)
	return []string{"--allow", userChatName + "=" + chat.PublicText(user), "--allow", dashboardChatName + "=" + chat.PublicText(dash),
		// Nothing said to an agent is hidden from the user.
		"--observer", userChatName, "--observer", dashboardChatName,
		"--admin", userChatName}, nil
}

// admitAgent makes a chat key for this run of the agent and admits it to
// the chat server (the user, its admin, asks over the engine's connection):
// a key that dies with the run. It returns nil, and admits nothing, without
// an allowlist.
func (e *Engine) admitAgent(ctx context.Context, name string) (ed25519.PrivateKey, error) {
	if e.chatAdmin.Load() == nil {
		return nil, nil
	}
	key, err := chat.NewKey()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, chatAdminTimeout)
	defer cancel()
	if err := e.chatAdminRequest(ctx, chat.TypeAdmit, name, chat.PublicText(key)); err != nil {
		return nil, fmt.Errorf("admit %s to the chat: %w", name, err)
	}
	return key, nil
}

// revokeAgent shuts the agent's chat key out and drops its connection,
// when its run ends. Without the engine's connection (the chat server is
// gone or restarting: it forgot the key) there is nothing to do; the next
// run's key replaces it anyway.
func (e *Engine) revokeAgent(name string) error {
	if e.chatAdmin.Load() == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), chatRevokeTimeout)
	defer cancel()
	if err := e.chatAdminRequest(ctx, chat.TypeRevoke, name, ""); err != nil {
		return fmt.Errorf("revoke %s's chat key: %w", name, err)
	}
	return nil
}

// How long an admission may wait for the engine's chat connection and the
// answer (through the relay and, with a VM, its SSH forward), and a
// revocation.
const (
	chatAdminTimeout  = 30 * time.Second
	chatRevokeTimeout = 5 * time.Second
)

// chatURL is the chat server as the host reaches it: the relay on the
// loopback at server.port.
func (e *Engine) chatURL() string {
	return "ws://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(e.opt.Config.Config.Server.Port))
}
