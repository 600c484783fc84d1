package guest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "git", append([]string{"-c", "safe.directory=*", "-c", "user.name=u", "-c", "user.email=u@x"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestWorkCopy: the agent's working copy is a clone of the project's
// HEAD on its own branch (the user's uncommitted work is not in it, the
// user's repository is not written, a project owned by another uid is
// fine); the diff shows its commits, changed and new files; a project
// that is not a repository gets a baseline commit; a second start keeps
// the copy.
func TestWorkCopy(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	project := t.TempDir()
	gitIn(t, project, "init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(project, "README"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, project, "add", "README")
	gitIn(t, project, "commit", "-qm", "first")
	head := gitIn(t, project, "rev-parse", "HEAD")
	// The user's work in progress stays theirs.
	_ = os.WriteFile(filepath.Join(project, "README"), []byte("hello, uncommitted\n"), 0o644)
	_ = os.WriteFile(filepath.Join(project, "scratch"), []byte("mine\n"), 0o644)
	if os.Getuid() == 0 { // as in the container: the project is another uid's
		_ = filepath.Walk(project, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, 12345, 12345) })
	}
	ws := t.TempDir()
	w := WorkCopy{Project: project, Dir: filepath.Join(ws, "project"), Agent: "agent-1"}
	did, err := w.Ensure(t.Context())
	if err != nil || !strings.Contains(did, "branch thesystem/agent-1") {
		t.Fatalf("Ensure: %q %v", did, err)
	}
	if b := gitIn(t, w.Dir, "branch", "--show-current"); b != "thesystem/agent-1" {
		t.Errorf("branch %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(w.Dir, "README")); string(b) != "hello\n" {
		t.Errorf("README in the copy: %q (the user's uncommitted change came along?)", b)
	}
	if _, err := os.Stat(filepath.Join(w.Dir, "scratch")); err == nil {
		t.Error("an untracked file of the user's came along")
	}
	if d, _ := w.Diff(t.Context(), 1<<20, false); !strings.Contains(d, "No changes on thesystem/agent-1 since "+head[:12]) {
		t.Errorf("diff before any work: %q", d)
	}
	// The agent works: a commit, an edit, a new file.
	_ = os.WriteFile(filepath.Join(w.Dir, "parser.go"), []byte("package p\n"), 0o644)
	gitIn(t, w.Dir, "add", "parser.go")
	gitIn(t, w.Dir, "commit", "-qm", "add the parser")
	_ = os.WriteFile(filepath.Join(w.Dir, "README"), []byte("hello\nmore\n"), 0o644)
	_ = os.WriteFile(filepath.Join(w.Dir, "notes.md"), []byte("todo\n"), 0o644)
	d, err := w.Diff(t.Context(), 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Branch thesystem/agent-1, since " + head[:12], "add the parser", "parser.go", "README", "+more",
		"new files, not added to git yet:\nnotes.md"} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
	// --stat: all but the diff itself.
	stat, err := w.Diff(t.Context(), 1<<20, true)
	if err != nil || !strings.Contains(stat, "add the parser") || !strings.Contains(stat, "parser.go | 1 +") ||
		!strings.Contains(stat, "notes.md") || strings.Contains(stat, "+more") {
		t.Errorf("diff --stat: %v\n%s", err, stat)
	}
	if files, err := w.Files(t.Context()); err != nil || strings.Join(files, ",") != "README,notes.md,parser.go" {
		t.Errorf("Files: %q %v", files, err)
	}
	if d, _ := w.Diff(t.Context(), 10, false); !strings.Contains(d, "more than a message holds") {
		t.Errorf("a diff over the cap: %q", d)
	}
	if did, err := w.Ensure(t.Context()); did != "" || err != nil {
		t.Errorf("a second start: %q %v", did, err)
	}
	// The branch, whole, as a bundle another repository can fetch.
	answer, err := w.Bundle(t.Context())
	f := strings.Fields(strings.TrimPrefix(answer, BundleReady))
	if err != nil || len(f) != 3 || f[0] != w.BundlePath() || f[1] != "thesystem/agent-1" || f[2] != gitIn(t, w.Dir, "rev-parse", "HEAD") {
		t.Fatalf("Bundle: %q %v", answer, err)
	}
	other := t.TempDir()
	gitIn(t, other, "init", "-q")
	gitIn(t, other, "fetch", "-q", w.BundlePath(), "thesystem/agent-1:refs/heads/taken")
	if got := gitIn(t, other, "log", "--format=%s", "taken"); got != "add the parser\nfirst" {
		t.Errorf("the fetched branch: %q", got)
	}
	if got := gitIn(t, project, "status", "--porcelain"); !strings.Contains(got, "M README") || !strings.Contains(got, "?? scratch") || strings.Contains(got, "parser.go") || strings.Contains(got, "notes.md") {
		t.Errorf("the user's repository changed: %q", got)
	}

	// Not a repository: a copy with a baseline commit.
	plain := t.TempDir()
	_ = os.WriteFile(filepath.Join(plain, "data.csv"), []byte("a,b\n"), 0o644)
	w2 := WorkCopy{Project: plain, Dir: filepath.Join(t.TempDir(), "project"), Agent: "agent-2"}
	if did, err := w2.Ensure(t.Context()); err != nil || !strings.Contains(did, "baseline commit") {
		t.Fatalf("plain: %q %v", did, err)
	}
	if log := gitIn(t, w2.Dir, "log", "--format=%s"); log != "baseline: the project as it was" {
		t.Errorf("plain log %q", log)
	}
	if _, err := os.Stat(filepath.Join(w2.Dir, "data.csv")); err != nil {
		t.Errorf("plain copy: %v", err)
	}
}

// TestWorkCopySyncAndRenew: the project moves on; Fetch brings its HEAD
// into the working copy, the agent rebases (done here by hand), and the
// base moves only once the branch contains it, so the diff shows the
// agent's own work. Renew (reset --hard) starts from the project's HEAD
// again and keeps the old branch as a bundle that holds its commits.
func TestWorkCopySyncAndRenew(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	project := t.TempDir()
	commit := func(dir, file, msg string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, file), []byte(msg+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		gitIn(t, dir, "add", file)
		gitIn(t, dir, "commit", "-qm", msg)
	}
	gitIn(t, project, "init", "-q", "-b", "main")
	commit(project, "README", "first")
	w := WorkCopy{Project: project, Dir: filepath.Join(t.TempDir(), "project"), Agent: "agent-1"}
	if _, err := w.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, moved, err := w.Fetch(t.Context()); err != nil || moved {
		t.Fatalf("Fetch with nothing new: moved %v, %v", moved, err)
	}
	commit(w.Dir, "agent.go", "the agent's work")
	commit(project, "upstream.go", "the user's new commit")
	head, moved, err := w.Fetch(t.Context())
	if err != nil || !moved || head != gitIn(t, project, "rev-parse", "HEAD") {
		t.Fatalf("Fetch: %s moved %v, %v", head, moved, err)
	}
	if w.Rebased(t.Context(), head) {
		t.Fatal("Rebased before the rebase")
	}
	gitIn(t, w.Dir, "rebase", "-q", ProjectRef) // what the agent is asked to do
	if !w.Rebased(t.Context(), head) {
		t.Fatal("not Rebased after the rebase")
	}
	d, err := w.Diff(t.Context(), 1<<20, false)
	if err != nil || !strings.Contains(d, "since "+head[:12]) || !strings.Contains(d, "the agent's work") || strings.Contains(d, "the user's new commit") {
		t.Errorf("diff after the sync:\n%s %v", d, err)
	}

	answer, err := w.Renew(t.Context())
	if err != nil || !strings.Contains(answer, "A fresh working copy: cloned the project onto branch thesystem/agent-1") ||
		!strings.Contains(answer, "(1 commit of its own) is kept in the workspace, ") {
		t.Fatalf("Renew: %q %v", answer, err)
	}
	if _, err := os.Stat(filepath.Join(w.Dir, "agent.go")); err == nil {
		t.Error("the agent's file survived reset --hard")
	}
	if d, _ := w.Diff(t.Context(), 1<<20, false); !strings.Contains(d, "No changes on thesystem/agent-1 since "+head[:12]) {
		t.Errorf("diff after Renew: %q", d)
	}
	kept, _ := filepath.Glob(filepath.Join(filepath.Dir(w.baseFile()), "before-reset-*.bundle"))
	if len(kept) != 1 {
		t.Fatalf("kept bundles: %v", kept)
	}
	other := t.TempDir()
	gitIn(t, other, "init", "-q")
	gitIn(t, other, "fetch", "-q", kept[0], "thesystem/agent-1:refs/heads/old")
	if got := gitIn(t, other, "log", "--format=%s", "old"); !strings.HasPrefix(got, "the agent's work\n") {
		t.Errorf("the kept branch: %q", got)
	}
	// A second Renew with nothing new keeps no bundle.
	if answer, err := w.Renew(t.Context()); err != nil || strings.Contains(answer, "kept") {
		t.Errorf("Renew with no commits: %q %v", answer, err)
	}

	plain := WorkCopy{Project: t.TempDir(), Dir: filepath.Join(t.TempDir(), "project"), Agent: "agent-2"}
	if _, err := plain.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := plain.Fetch(t.Context()); err == nil || !strings.Contains(err.Error(), "not a git repository") {
		t.Errorf("Fetch of a plain project: %v", err)
	}
}
