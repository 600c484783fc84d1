package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/thesystem-dev/thesystem/engine/config"
)

// openPTY opens a pseudo-terminal: the test's end and the program's.
func openPTY(t *testing.T) (ours, theirs *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(); _ = s.Close() })
	return m, s
}

// terminal is what a program wrote to its terminal, as it comes.
type terminal struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *terminal) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.buf.String() }

// waitFor waits until the terminal shows want.
func (s *terminal) waitFor(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(s.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q:\n%s", want, s.String())
		}
	}
}

// TestInitGuided: on a terminal, init asks for the runtime, writes the
// file with it, offers to store its provider's key (typed without echo,
// into the key store, its fingerprint shown), and runs the doctor's
// checks, printing what to fix; --yes asks nothing.
func TestInitGuided(t *testing.T) {
	env := keyringEnv(t)
	dir := repo(t)
	ours, theirs := openPTY(t)
	cmd := newCmd(t.Context(), dir, env, "init")
	var stdout bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = theirs, &stdout, theirs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	term := &terminal{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ours.Read(b)
			term.mu.Lock()
			term.buf.Write(b[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	key := "sk-proj-PLANTEDinitKEY0123456789abcdefghij"
	term.waitFor(t, "Which runtime should the agents run")
	_, _ = ours.WriteString("c\n") // claude or codex: asked again
	term.waitFor(t, `"c" could be claude or codex: say which`)
	_, _ = ours.WriteString("cod\n")
	term.waitFor(t, "Store your openai API key now?")
	_, _ = ours.WriteString("\n")
	term.waitFor(t, "openai API key (input hidden): ")
	_, _ = ours.WriteString(key + "\n")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("init: %v\n%s\n%s", err, stdout.String(), term.String())
	}
	out := stdout.String()
	t.Logf("init on a terminal:\n%s\n%s", term.String(), out)
	for _, want := range []string{"wrote thesystem.yaml (swarm.backend: codex)\n", "stored the openai key (sha256:", "checking what the stack needs…\n", "next: `thesystem start`\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("init said:\n%s\nwant %q", out, want)
		}
	}
	if !strings.Contains(out, "      fix: ") && !strings.Contains(out, "everything the stack needs is here") {
		t.Errorf("no word from the doctor:\n%s", out)
	}
	if strings.Contains(term.String(), key) || strings.Contains(out, key) {
		t.Error("the key was echoed")
	}
	l, err := config.Load(filepath.Join(dir, config.FileName), dir, config.Options{})
	if err != nil || l.Config.Swarm.Backend != config.BackendCodex {
		t.Fatalf("the file written: %v %+v", err, l)
	}
	if r := runIn(t, dir, env, "", "keys", "list"); r.code != 0 || !strings.Contains(r.stdout, "openai") {
		t.Errorf("the key is not in the store: %+v", r)
	}

	// --yes: the defaults, no question, even on a terminal.
	dir2, before := repo(t), len(term.String())
	cmd = newCmd(t.Context(), dir2, env, "init", "--yes")
	stdout.Reset()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = theirs, &stdout, theirs
	if err := cmd.Run(); err != nil || !strings.Contains(stdout.String(), "wrote thesystem.yaml\n") || strings.Contains(term.String()[before:], "Which runtime") {
		t.Errorf("init --yes: %v %q", err, stdout.String())
	}
	// An existing file is kept, before any question.
	cmd = newCmd(t.Context(), dir, env, "init")
	var errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = theirs, &stdout, &errb
	if err := cmd.Run(); err == nil || !strings.Contains(errb.String(), "already exists (use --force to overwrite it)") {
		t.Errorf("init over a file: %v %s", err, errb.String())
	}
}
