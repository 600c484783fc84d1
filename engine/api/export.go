package api

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Exported is a branch an export created or updated.
type Exported struct {
	Branch string // the local branch
	Commit string // its commit, as the repository has it now
	Repo   string // the repository's top directory
	// Updated: the branch existed (and --force let it be overwritten).
	Updated bool
}

// Did is "created" or "updated".
func (x Exported) Did() string {
	if x.Updated {
		return "updated"
	}
	return "created"
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
// holds dir as the local branch dst ("": thesystem/<agent>, named here,
// never by the agent: an agent could claim another's name),
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
		dst = "thesystem/" + agent
	}
	if err := exec.CommandContext(ctx, "git", "-C", root, "check-ref-format", "--branch", dst).Run(); err != nil || strings.HasPrefix(dst, "refs/") || strings.HasPrefix(dst, "-") {
		return Exported{}, fmt.Errorf("%q is not a valid branch name", dst)
	}
	// The branch in the bundle is the agent's word: a plain branch name,
	// or nothing is fetched.
	if err := exec.CommandContext(ctx, "git", "-C", root, "check-ref-format", "--branch", b.Branch).Run(); err != nil || strings.HasPrefix(b.Branch, "-") || strings.HasPrefix(b.Branch, "refs/") {
		return Exported{}, fmt.Errorf("%s's bundle names no plain branch (%q)", agent, b.Branch)
	}
	exists := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--verify", "--quiet", "refs/heads/"+dst).Run() == nil
	if exists && !force {
		return Exported{}, &BranchExistsError{Branch: dst, Repo: root}
	}
	spec := "refs/heads/" + b.Branch + ":refs/heads/" + dst
	if force {
		spec = "+" + spec
	}
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "fetch", "--quiet", "--no-tags", "--", f.Name(), spec).CombinedOutput(); err != nil {
		if strings.Contains(string(out), "checked out") {
			return Exported{}, fmt.Errorf("%s is checked out in %s: git never overwrites the branch you are on; export into another branch, or check out another one first", dst, root)
		}
		return Exported{}, fmt.Errorf("git fetch from %s's bundle: %w: %s", agent, err, strings.TrimSpace(string(out)))
	}
	// The commit the branch now has, as git says (not the agent).
	commit, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--verify", "refs/heads/"+dst).Output()
	if err != nil {
		return Exported{}, fmt.Errorf("the exported branch %s: %w", dst, err)
	}
	return Exported{Branch: dst, Commit: strings.TrimSpace(string(commit)), Repo: root, Updated: exists}, nil
}
