package guest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// WorkCopy is an agent's own working copy of the project, in its
// workspace: a clone of the read-only /project on the branch
// thesystem/<agent> from the project's HEAD (a project that is not a git
// repository: a plain copy with a baseline commit). The user's repository
// is never written: what the agent does stays in its workspace until the
// user takes it.
type WorkCopy struct {
	Project string // the read-only project, /project
	Dir     string // the working copy, /workspace/project
	Agent   string
}

// Branch is the agent's branch.
func (w WorkCopy) Branch() string { return "thesystem/" + w.Agent }

// baseFile keeps the commit the branch started from.
func (w WorkCopy) baseFile() string { return filepath.Join(filepath.Dir(w.Dir), ".thesystem", "base") }

// Ensure makes the working copy on the agent's first start; later starts
// keep it (the workspace survives stop). It says what it did ("" when
// there was nothing to do).
func (w WorkCopy) Ensure(ctx context.Context) (string, error) {
	if _, err := os.Stat(filepath.Join(w.Dir, ".git")); err == nil {
		return "", nil
	}
	if _, err := exec.LookPath("git"); err != nil {
		return "", errors.New("no git in the agents' image: no working copy (install mmdebstrap on the host, then `thesystem reinstall`)")
	}
	if _, err := os.Stat(w.Project); err != nil {
		return "", fmt.Errorf("no project at %s: %w", w.Project, err)
	}
	_ = os.RemoveAll(w.Dir) // a copy that did not get as far as its repository
	// The project belongs to the user's uid, which is no one in here: the
	// agent (and this) may read it with git all the same.
	if err := w.git(ctx, filepath.Dir(w.Dir), "config", "--global", "--replace-all", "safe.directory", "*"); err != nil {
		return "", err
	}
	did := ""
	if _, err := os.Stat(filepath.Join(w.Project, ".git")); err == nil {
		if err := w.git(ctx, filepath.Dir(w.Dir), "clone", "--quiet", "--no-local", "--no-hardlinks", w.Project, w.Dir); err != nil {
			return "", err
		}
		if err := w.git(ctx, w.Dir, "checkout", "--quiet", "-b", w.Branch()); err != nil {
			return "", err
		}
		did = fmt.Sprintf("cloned the project onto branch %s", w.Branch())
	} else {
		if err := os.MkdirAll(w.Dir, 0o755); err != nil {
			return "", err
		}
		if out, err := exec.CommandContext(ctx, "cp", "-a", w.Project+"/.", w.Dir).CombinedOutput(); err != nil {
			return "", fmt.Errorf("copy the project: %w: %s", err, bytes.TrimSpace(out))
		}
		for _, args := range [][]string{{"init", "--quiet", "-b", w.Branch()}, {"config", "user.name", w.Agent}, {"config", "user.email", w.Agent + "@thesystem.invalid"},
			{"add", "-A"}, {"commit", "--quiet", "--allow-empty", "-m", "baseline: the project as it was"}} {
			if err := w.git(ctx, w.Dir, args...); err != nil {
				return "", err
			}
		}
		did = fmt.Sprintf("copied the project (not a git repository) with a baseline commit, on branch %s", w.Branch())
	}
	for _, kv := range [][2]string{{"user.name", w.Agent}, {"user.email", w.Agent + "@thesystem.invalid"}} {
		if err := w.git(ctx, w.Dir, "config", kv[0], kv[1]); err != nil {
			return "", err
		}
	}
	base, err := w.output(ctx, "rev-parse", "HEAD")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(w.baseFile()), 0o700); err != nil {
		return "", err
	}
	return did, os.WriteFile(w.baseFile(), []byte(base+"\n"), 0o600)
}

// Diff is what the agent changed since its base: the commits, the files
// (with --stat's counts), and the whole diff, committed or not, capped
// at max bytes.
func (w WorkCopy) Diff(ctx context.Context, max int, statOnly bool) (string, error) {
	b, err := os.ReadFile(w.baseFile())
	if err != nil {
		return "", fmt.Errorf("no working copy yet: %w", err)
	}
	base := strings.TrimSpace(string(b))
	log, err := w.output(ctx, "log", "--format=%h %s", base+"..HEAD")
	if err != nil {
		return "", err
	}
	stat, err := w.output(ctx, "diff", "--stat", base)
	if err != nil {
		return "", err
	}
	if stat != "" {
		stat = " " + stat // git indents each file's line; output trimmed the first
	}
	full, err := w.output(ctx, "diff", base)
	if err != nil {
		return "", err
	}
	untracked, err := w.output(ctx, "ls-files", "--others", "--exclude-standard")
	if err != nil {
		return "", err
	}
	if log == "" && stat == "" && untracked == "" {
		return fmt.Sprintf("No changes on %s since %s.", w.Branch(), short(base)), nil
	}
	var s strings.Builder
	fmt.Fprintf(&s, "Branch %s, since %s:\n", w.Branch(), short(base))
	if log != "" {
		fmt.Fprintf(&s, "commits:\n%s\n", log)
	}
	if stat != "" {
		fmt.Fprintf(&s, "%s\n", stat)
	}
	if untracked != "" {
		fmt.Fprintf(&s, "new files, not added to git yet:\n%s\n", untracked)
	}
	if statOnly {
		return strings.TrimSuffix(s.String(), "\n"), nil
	}
	s.WriteString("\n")
	if s.Len()+len(full) > max {
		fmt.Fprintf(&s, "(the diff itself is %d bytes, more than a message holds: see it in the working copy)", len(full))
	} else {
		s.WriteString(full)
	}
	return s.String(), nil
}

// Renew replaces the working copy with a fresh one from the project's
// HEAD (reset --hard). What the old branch had beyond its base is kept as a
// bundle in the workspace first, so nothing is lost by a mistaken reset.
func (w WorkCopy) Renew(ctx context.Context) (string, error) {
	kept := ""
	if b, err := os.ReadFile(w.baseFile()); err == nil {
		base := strings.TrimSpace(string(b))
		if n, err := w.output(ctx, "rev-list", "--count", base+".."+w.Branch()); err == nil && n != "0" {
			path := filepath.Join(filepath.Dir(w.baseFile()), fmt.Sprintf("before-reset-%d.bundle", time.Now().Unix()))
			if err := w.git(ctx, w.Dir, "bundle", "create", "--quiet", path, w.Branch()); err != nil {
				return "", fmt.Errorf("keep the old branch before the reset: %w", err)
			}
			var commits int
			_, _ = fmt.Sscan(n, &commits)
			kept = fmt.Sprintf(" The old branch (%s of its own) is kept in the workspace, %s (git fetch %s %s).", plural(commits, "commit"), path, path, w.Branch())
		}
	}
	if err := os.RemoveAll(w.Dir); err != nil {
		return "", err
	}
	_ = os.Remove(w.baseFile())
	did, err := w.Ensure(ctx)
	if err != nil {
		return "", err
	}
	return "A fresh working copy: " + did + "." + kept, nil
}

// Fetch brings the project's current HEAD into the working copy as
// ProjectRef, for the agent to rebase onto; moved says whether it differs
// from the commit the branch started from.
func (w WorkCopy) Fetch(ctx context.Context) (head string, moved bool, err error) {
	if _, err := os.Stat(filepath.Join(w.Project, ".git")); err != nil {
		return "", false, errors.New("the project is not a git repository: there is no newer commit to sync (agents reset --hard makes a fresh copy)")
	}
	if err := w.git(ctx, w.Dir, "fetch", "--quiet", "--no-tags", w.Project, "+HEAD:"+ProjectRef); err != nil {
		return "", false, err
	}
	if head, err = w.output(ctx, "rev-parse", ProjectRef); err != nil {
		return "", false, err
	}
	b, err := os.ReadFile(w.baseFile())
	if err != nil {
		return "", false, fmt.Errorf("no working copy yet: %w", err)
	}
	return head, strings.TrimSpace(string(b)) != head, nil
}

// Rebased moves the branch's base to head once the branch contains it
// (the agent rebased onto it), so diff and export show its own work only.
func (w WorkCopy) Rebased(ctx context.Context, head string) bool {
	if w.git(ctx, w.Dir, "merge-base", "--is-ancestor", head, "HEAD") != nil {
		return false
	}
	return os.WriteFile(w.baseFile(), []byte(head+"\n"), 0o600) == nil
}

// State is the working copy at a moment: its HEAD and a tree of all its
// files, committed or not (untracked ones too, ignored ones not), written
// through an index of its own so the agent's index is not touched.
type State struct{ Head, Tree string }

// Now is the working copy's State.
func (w WorkCopy) Now(ctx context.Context) (State, error) {
	head, err := w.output(ctx, "rev-parse", "HEAD")
	if err != nil {
		return State{}, err
	}
	idx := filepath.Join(filepath.Dir(w.baseFile()), "snapshot.index")
	// From a copy of the agent's index: git then hashes only what changed.
	if b, err := os.ReadFile(filepath.Join(w.Dir, ".git", "index")); err == nil {
		_ = os.WriteFile(idx, b, 0o600)
	}
	defer func() { _ = os.Remove(idx) }()
	withIndex := func(args ...string) *exec.Cmd {
		cmd := w.gitCmd(ctx, w.Dir, args...)
		cmd.Env = append(cmd.Env, "GIT_INDEX_FILE="+idx)
		return cmd
	}
	if out, err := withIndex("add", "-A").CombinedOutput(); err != nil {
		return State{}, fmt.Errorf("git add: %w: %s", err, bytes.TrimSpace(out))
	}
	tree, err := withIndex("write-tree").Output()
	if err != nil {
		return State{}, fmt.Errorf("git write-tree: %w", err)
	}
	return State{Head: head, Tree: strings.TrimSpace(string(tree))}, nil
}

// Changes is what happened between two States: the files whose content
// changed (committed or not) and the commits made.
func (w WorkCopy) Changes(ctx context.Context, from, to State) (files, commits int, err error) {
	names, err := w.output(ctx, "diff", "--name-only", from.Tree, to.Tree)
	if err != nil {
		return 0, 0, err
	}
	if names != "" {
		files = strings.Count(names, "\n") + 1
	}
	n, err := w.output(ctx, "rev-list", "--count", from.Head+".."+to.Head)
	if err != nil {
		return 0, 0, err
	}
	_, err = fmt.Sscan(n, &commits)
	return files, commits, err
}

// ProjectRef is where Fetch puts the project's HEAD in the working copy.
const ProjectRef = "refs/thesystem/project"

// FilesPrefix starts the answer to a request for the files the agent
// changed: then one path a line.
const FilesPrefix = "files changed on "

// Files are the files the agent changed since its base, committed or
// not, new ones too: what another agent's branch may collide with. It
// reads only (no index refresh written), so it may run beside a task.
func (w WorkCopy) Files(ctx context.Context) ([]string, error) {
	b, err := os.ReadFile(w.baseFile())
	if err != nil {
		return nil, fmt.Errorf("no working copy yet: %w", err)
	}
	var files []string
	for _, args := range [][]string{{"diff", "--name-only", "-z", strings.TrimSpace(string(b))}, {"ls-files", "-z", "--others", "--exclude-standard"}} {
		cmd := w.gitCmd(ctx, w.Dir, args...)
		cmd.Env = append(cmd.Env, "GIT_OPTIONAL_LOCKS=0")
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("git %s: %w", args[0], err)
		}
		for _, f := range strings.Split(string(out), "\x00") {
			if f != "" {
				files = append(files, f)
			}
		}
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}

// BundleReady starts the answer to a request for the agent's branch.
const BundleReady = "bundle ready: "

// BundlePath is where Bundle writes the branch.
func (w WorkCopy) BundlePath() string {
	return filepath.Join(filepath.Dir(w.Dir), ".thesystem", "export.bundle")
}

// Bundle writes the agent's branch, whole, as a git bundle at BundlePath
// and says so: BundleReady, the path, the branch and its commit.
func (w WorkCopy) Bundle(ctx context.Context) (string, error) {
	if err := os.MkdirAll(filepath.Dir(w.BundlePath()), 0o700); err != nil {
		return "", err
	}
	if err := w.git(ctx, w.Dir, "bundle", "create", "--quiet", w.BundlePath(), w.Branch()); err != nil {
		return "", err
	}
	head, err := w.output(ctx, "rev-parse", w.Branch())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s%s %s %s", BundleReady, w.BundlePath(), w.Branch(), head), nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// gitCmd is git in dir with the agent's home, the workspace, whose
// global config trusts the project whoever owns it (Ensure): git honours
// safe.directory only from a global or system config.
func (w WorkCopy) gitCmd(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	// No optional lock (git diff's index refresh): the user's /diff and
	// /files read beside the agent's own git commands.
	cmd.Env = append(os.Environ(), "HOME="+filepath.Dir(w.Dir), "GIT_OPTIONAL_LOCKS=0")
	return cmd
}

func (w WorkCopy) git(ctx context.Context, dir string, args ...string) error {
	cmd := w.gitCmd(ctx, dir, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %w: %s", args[0], err, bytes.TrimSpace(out))
	}
	return nil
}

func (w WorkCopy) output(ctx context.Context, args ...string) (string, error) {
	cmd := w.gitCmd(ctx, w.Dir, args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", args[0], err, bytes.TrimSpace(errb.Bytes()))
	}
	return strings.TrimSpace(string(out)), nil
}
