package component

import (
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"sync/atomic"

	"github.com/thesystem-dev/thesystem/engine/chat"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/guest"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
)

// The chat names of the identities the engine issues besides the agents'.
const (
	UserChatName      = "user"
	DashboardChatName = "dashboard"
)

// Identities are the chat identities of a run of the embedded chat
// server with server.allowlist on: the user's (the server's admin, which
// admits each run of an agent) and the dashboard's; with mode client, the
// same lasting identities, which the remote server's admin admits.
type Identities struct {
	Env   Env
	admin atomic.Pointer[ed25519.PrivateKey]
}

// UserKey is the user's chat key for the chat server's current run; nil
// without an allowlist.
func (ids *Identities) UserKey() ed25519.PrivateKey {
	if k := ids.admin.Load(); k != nil {
		return *k
	}
	return nil
}

// Issue makes the chat identities for a run of the embedded
// chat server when server.allowlist is on, the user's and the dashboard's
// (kept in the state dir, 0600: a file that never changes is never served
// stale by the VM's sshfs cache), and returns the server's arguments:
// public keys only, the user as the admin that admits each run of an
// agent (UserChat.AdmitAgent). The dashboard's private key goes in a dir that only
// the dashboard's container mounts.
func (ids *Identities) Issue() ([]string, error) {
	cfg, paths := ids.Env.Config.Config, ids.Env.Paths
	client := cfg.Mode == config.ModeClient
	if !client && (!cfg.Server.Allowlist || cfg.Server.Chat == config.ChatUpstream) {
		ids.admin.Store(nil)
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
	uid, gid := ids.Env.Layout.OwnerUID, ids.Env.Layout.OwnerGID
	dir := paths.DashboardIdentityDir()
	if err := sandbox.MkdirOwned(dir, uid, gid); err != nil {
		return nil, fmt.Errorf("the dashboard's identity: %w", err)
	}
	if err := chat.WriteKey(filepath.Join(dir, guest.IdentityFile), dash, 0o400, uid, gid); err != nil {
		return nil, fmt.Errorf("the dashboard's identity: %w", err)
	}
	ids.admin.Store(&user)
	if client { // the remote server admits whom it will: no arguments
		return nil, nil
	}
	return []string{"--allow", UserChatName + "=" + chat.PublicText(user), "--allow", DashboardChatName + "=" + chat.PublicText(dash),
		// Nothing said to an agent is hidden from the user.
		"--observer", UserChatName, "--observer", DashboardChatName,
		"--admin", UserChatName}, nil
}
