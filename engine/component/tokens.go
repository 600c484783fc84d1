package component

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/thesystem-dev/thesystem/engine/atomicfile"
	"github.com/thesystem-dev/thesystem/engine/chat"
	"github.com/thesystem-dev/thesystem/engine/guest"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
)

// writeAgentToken writes an agent's token in a dir of its own for this
// run (a new path each time), removes the earlier runs', and returns the
// dir as podman sees it. With a VM the tier writes the same files into
// the guest too (its tmpfs, over SSH: no mount between host and guest
// that a sleep could break carries them).
func (e Env) writeAgentToken(ctx context.Context, name, tok string, chatKey ed25519.PrivateKey) (string, error) {
	uid, gid := e.Layout.OwnerUID, e.Layout.OwnerGID
	parent := e.Paths.AgentDir(name)
	if err := sandbox.MkdirOwned(parent, uid, gid); err != nil {
		return "", fmt.Errorf("token for %s: %w", name, err)
	}
	if old, err := os.ReadDir(parent); err == nil {
		for _, o := range old {
			_ = os.RemoveAll(filepath.Join(parent, o.Name()))
		}
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	run := hex.EncodeToString(r[:])
	dir := filepath.Join(parent, run)
	if err := sandbox.MkdirOwned(dir, uid, gid); err != nil {
		return "", fmt.Errorf("token for %s: %w", name, err)
	}
	files := map[string][]byte{guest.TokenFile: []byte(tok + "\n")}
	if chatKey != nil { // its chat identity, beside the token, nowhere else
		b, err := chat.EncodeKey(chatKey)
		if err != nil {
			return "", fmt.Errorf("chat identity for %s: %w", name, err)
		}
		files[guest.IdentityFile] = b
	}
	podmanDir := path.Join(e.Layout.AgentsDir, name, run)
	if err := e.putFiles(ctx, dir, podmanDir, files, true); err != nil {
		return "", fmt.Errorf("token for %s: %w", name, err)
	}
	return podmanDir, nil
}

// putFiles writes files into the host's dir, readable by the agents' uid
// only (0400), and, with a VM, the same into podmanDir in the guest
// (only: the other runs' dirs beside it go).
func (e Env) putFiles(ctx context.Context, dir, podmanDir string, files map[string][]byte, only bool) error {
	for name, b := range files {
		if err := atomicfile.WriteOwned(filepath.Join(dir, name), b, 0o400, e.Layout.OwnerUID, e.Layout.OwnerGID); err != nil {
			return err
		}
	}
	if e.Layout.Files == nil {
		return nil
	}
	return e.Layout.Files.WriteFiles(ctx, podmanDir, files, only)
}

// DeliverToken replaces the token in the agent's current token dir (and
// the guest's copy, with a VM); its runner reads the file before each
// run, so a rotated token reaches a running agent.
func (e Env) DeliverToken(ctx context.Context, name, tok string) error {
	parent := e.Paths.AgentDir(name)
	runs, err := os.ReadDir(parent)
	if err != nil {
		return fmt.Errorf("token for %s: %w", name, err)
	}
	for _, r := range runs {
		if !r.IsDir() {
			continue
		}
		files := map[string][]byte{guest.TokenFile: []byte(tok + "\n")}
		if err := e.putFiles(ctx, filepath.Join(parent, r.Name()), path.Join(e.Layout.AgentsDir, name, r.Name()), files, false); err != nil {
			return fmt.Errorf("token for %s: %w", name, err)
		}
	}
	return nil
}

// copySecrets gives the tier the files of the host's dir src as podmanDir
// (with a VM, written into the guest over SSH); nothing to do when the
// host's dirs are podman's.
func (e Env) copySecrets(ctx context.Context, src, podmanDir string) error {
	if e.Layout.Files == nil {
		return nil
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	files := map[string][]byte{}
	for _, f := range ents {
		if !f.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, f.Name()))
		if err != nil {
			return err
		}
		files[f.Name()] = b
	}
	return e.Layout.Files.WriteFiles(ctx, podmanDir, files, false)
}
