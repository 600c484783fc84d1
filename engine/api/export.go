package api

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Exported is a branch an export created.
type Exported struct {
	Branch string // the local branch
	Commit string // its commit
	Repo   string // the repository's top directory
}

// NotARepoError: the directory given for an export is in no repository.
type NotARepoError struct{ Dir string }

func (e *NotARepoError) Error() string {
	if _, err := os.Stat(e.Dir); err != nil {
		return e.Dir + ": no such directory"
	}
	return e.Dir + ": not in a git repository"
}

// BranchExistsError: an export would overwrite a branch, and was not
// told it may.
type BranchExistsError struct{ Branch, Repo string }

func (e *BranchExistsError) Error() string {
	return fmt.Sprintf("branch %s exists in %s", e.Branch, e.Repo)
}

// ExportBranch brings the agent's branch into the git repository that
// holds dir as the local branch dst ("": the agent's own name for it),
// through its bundle: a fetch into refs/heads only, never a checkout or a
// merge, which git itself refuses for the branch checked out. An existing
// branch is overwritten only with force. It runs git as the caller: the
// user's repository is the user's to write.
func (c *Client) ExportBranch(ctx context.Context, agent, dir, dst string, force bool) (Exported, error) {
	top, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return Exported{}, &NotARepoError{Dir: dir}
	}
	root := strings.TrimSpace(string(top))
	f, err := os.CreateTemp("", "thesystem-"+agent+"-*.bundle")
	if err != nil {
		return Exported{}, err
	}
	defer func() { _ = f.Close(); _ = os.Remove(f.Name()) }()
	b, err := c.AgentBundle(ctx, agent, f)
	if err != nil {
		return Exported{}, err
	}
	if err := f.Close(); err != nil {
		return Exported{}, err
	}
	if dst == "" {
		dst = b.Branch
	}
	if err := exec.CommandContext(ctx, "git", "-C", root, "check-ref-format", "--branch", dst).Run(); err != nil || strings.HasPrefix(dst, "refs/") {
		return Exported{}, fmt.Errorf("%q is not a valid branch name", dst)
	}
	exists := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--verify", "--quiet", "refs/heads/"+dst).Run() == nil
	if exists && !force {
		return Exported{}, &BranchExistsError{Branch: dst, Repo: root}
	}
	spec := b.Branch + ":refs/heads/" + dst
	if force {
		spec = "+" + spec
	}
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "fetch", "--quiet", "--no-tags", f.Name(), spec).CombinedOutput(); err != nil {
		if strings.Contains(string(out), "checked out") {
			return Exported{}, fmt.Errorf("%s is checked out in %s: git never overwrites the branch you are on; export into another branch, or check out another one first", dst, root)
		}
		return Exported{}, fmt.Errorf("git fetch from %s's bundle: %w: %s", agent, err, strings.TrimSpace(string(out)))
	}
	return Exported{Branch: dst, Commit: b.Commit, Repo: root}, nil
}
