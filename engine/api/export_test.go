package api

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// bundleBackend answers a bundle of a real repository's branch, under
// the name the agent claims for it.
type bundleBackend struct {
	*fakeBackend
	bundle, claim string
}

func (b *bundleBackend) AgentBundle(_ context.Context, agent string, w io.Writer) (Bundle, error) {
	f, err := os.Open(b.bundle)
	if err != nil {
		return Bundle{}, err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return Bundle{Agent: agent, Branch: b.claim, Commit: "0000000000000000000000000000000000000000"}, err
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "git", append([]string{"-C", dir, "-c", "user.name=u", "-c", "user.email=u@x"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestExportTrustsNoClaim: what an export does is decided here, not by
// the agent's answer: the branch created is thesystem/<agent> whatever
// name the agent gives its own, the commit reported is the one git
// fetched, a claimed name that is not a plain branch (an option, a ref
// path) fetches nothing, and an overwrite says "updated".
func TestExportTrustsNoClaim(t *testing.T) {
	work, repo := t.TempDir(), t.TempDir()
	gitIn(t, work, "init", "-q", "-b", "thesystem/agent-1")
	_ = os.WriteFile(filepath.Join(work, "f"), []byte("x\n"), 0o644)
	gitIn(t, work, "add", "f")
	gitIn(t, work, "commit", "-qm", "work")
	commit := gitIn(t, work, "rev-parse", "HEAD")
	bundle := filepath.Join(t.TempDir(), "b.bundle")
	gitIn(t, work, "bundle", "create", "-q", bundle, "thesystem/agent-1")
	gitIn(t, repo, "init", "-q", "-b", "main")
	gitIn(t, repo, "commit", "-q", "--allow-empty", "-m", "mine")

	b := &bundleBackend{fakeBackend: &fakeBackend{keys: map[string]string{}}, bundle: bundle}
	sock := filepath.Join(t.TempDir(), "api.sock")
	serve(t, &Server{Backend: b, Socket: sock, UID: -1})
	c := &Client{Socket: sock}

	b.claim = "thesystem/agent-1"
	x, err := c.ExportBranch(t.Context(), "agent-1", repo, "", false)
	if err != nil || x.Branch != "thesystem/agent-1" || x.Commit != commit || x.Updated || x.Did() != "created" {
		t.Fatalf("export: %+v %v", x, err)
	}
	// The agent claims another agent's name: the branch is still its own.
	gitIn(t, work, "branch", "thesystem/agent-2")
	gitIn(t, work, "bundle", "create", "-q", bundle, "thesystem/agent-2")
	b.claim = "thesystem/agent-2"
	x, err = c.ExportBranch(t.Context(), "agent-1", repo, "", true)
	if err != nil || x.Branch != "thesystem/agent-1" || !x.Updated || x.Did() != "updated" {
		t.Errorf("a claimed name: %+v %v", x, err)
	}
	if out, _ := exec.CommandContext(t.Context(), "git", "-C", repo, "rev-parse", "--verify", "--quiet", "thesystem/agent-2").Output(); len(out) > 0 {
		t.Error("an agent created another agent's branch")
	}
	for _, claim := range []string{"--upload-pack=touch /tmp/x", "refs/heads/main", "main..x"} {
		b.claim = claim
		if _, err := c.ExportBranch(t.Context(), "agent-1", repo, "elsewhere", false); err == nil || !strings.Contains(err.Error(), "names no plain branch") {
			t.Errorf("claim %q: %v", claim, err)
		}
	}
	b.claim = "" // no branch at all: nothing to fetch
	if _, err := c.ExportBranch(t.Context(), "agent-1", repo, "elsewhere", false); err == nil {
		t.Error("a bundle with no branch named was exported")
	}
	if gitIn(t, repo, "branch", "--show-current") != "main" {
		t.Error("the user's branch moved")
	}
}
