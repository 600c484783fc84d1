package guest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/chat"
)

// TestReadCodexStream: codex's events become progress lines and the
// answer; a failed turn is a failure; output that is not its events is
// the answer as it is.
func TestReadCodexStream(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      Stream
		progress  []string
	}{
		{"work", `{"type":"thread.started","thread_id":"01a236fd-bce5-75a0-8ff3-e7533a1ca284"}
{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for x not found."}}
{"type":"turn.started"}
{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"/bin/bash -lc 'echo '\\''hi'\\'' > proof.txt'","status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"/bin/bash -lc 'echo hi > proof.txt'","exit_code":0}}
{"type":"item.completed","item":{"id":"item_2","type":"file_change","changes":[{"path":"/workspace/project/a.go","kind":"update"},{"path":"/workspace/project/b.go","kind":"add"}]}}
{"type":"item.completed","item":{"id":"item_3","type":"agent_message","text":"first thought"}}
{"type":"item.completed","item":{"id":"item_4","type":"agent_message","text":"  done: proof.txt\n"}}
{"type":"turn.completed","usage":{"input_tokens":11,"output_tokens":7}}
`, Stream{Answer: "done: proof.txt", Tools: 2, Session: "01a236fd-bce5-75a0-8ff3-e7533a1ca284"},
			[]string{"running: echo 'hi' > proof.txt", "editing a.go, b.go"}},
		{"failed", `{"type":"thread.started","thread_id":"t1"}
{"type":"error","message":"Reconnecting... 1/5 (unexpected status 429: budget_exceeded)"}
{"type":"turn.failed","error":{"message":"unexpected status 429 Too Many Requests: agent-1 has spent its budget"}}
`, Stream{Answer: "(codex failed: unexpected status 429 Too Many Requests: agent-1 has spent its budget)", Failed: true, Session: "t1"}, nil},
		{"plain", "Error: not logged in\n", Stream{Answer: "Error: not logged in"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			s := ReadCodexStream(strings.NewReader(tc.out), func(l string) { got = append(got, l) })
			if s.Answer != tc.want.Answer || s.Failed != tc.want.Failed || s.Tools != tc.want.Tools || s.Session != tc.want.Session {
				t.Errorf("stream %+v, want %+v", s, tc.want)
			}
			if strings.Join(got, "\n") != strings.Join(tc.progress, "\n") {
				t.Errorf("progress %q, want %q", got, tc.progress)
			}
		})
	}
}

func TestCodexCommand(t *testing.T) {
	for in, want := range map[string]string{
		`/bin/bash -lc 'make test'`:                                           "make test",
		`/bin/bash -lc 'echo '\''hi'\'''`:                                     "echo 'hi'",
		`/bin/bash -lc "git log -1 --format='%s' && echo \"\$HOME\" \\ done"`: `git log -1 --format='%s' && echo "$HOME" \ done`,
		`ls -la`: "ls -la",
	} {
		if got := codexCommand(in); got != want {
			t.Errorf("codexCommand(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestTOMLString(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:               `"plain"`,
		"two\nlines\t\"q\"\\": `"two\nlines\t\"q\"\\"`,
		"bell\a":              `"bell\u0007"`,
		"ünïcode ✓":           `"ünïcode ✓"`,
	} {
		if got := TOMLString(in); got != want {
			t.Errorf("TOMLString(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestRunAgentCodex: a codex agent runs `codex exec` with the proxy as its
// model provider (the token only by its variable's name), its progress
// posted; the thread codex starts is kept and the next task resumes it; a
// thread codex no longer has is started afresh, once.
func TestRunAgentCodex(t *testing.T) {
	home := t.TempDir()
	sessionFile := filepath.Join(home, ".thesystem", "session")
	args := filepath.Join(t.TempDir(), "args")
	// The stand-in: its arguments and its stdin to files, then codex's events; a
	// resume of a thread it does not know fails as codex does.
	script := `printf '%s\n' "$@" > "$ARGS"; cat > "$ARGS.stdin"
case " $* " in *" resume gone-0000-0000-0000-000000000000000 "*) echo "Error: thread/resume: thread/resume failed: no rollout found for thread id gone" >&2; exit 1;; esac
printf '%s\n' '{"type":"thread.started","thread_id":"01a236fd-bce5-75a0-8ff3-e7533a1ca284"}'
printf '%s\n' '{"type":"item.started","item":{"type":"command_execution","command":"/bin/bash -lc '"'"'make test'"'"'"}}'
sleep 1.2
printf '%s\n' '{"type":"item.completed","item":{"type":"agent_message","text":"tests pass"}}'`
	env := append(os.Environ(), "ARGS="+args, "HOME="+home, "OPENAI_BASE_URL=http://127.0.0.1:9999/openai/v1", "OPENAI_API_KEY=tok-PLANTED")
	user, agent := agentHarness(t, RunnerOptions{Session: sessionFile, Runtime: RuntimeCodex, Env: env,
		Argv: []string{"sh", "-c", script, "codex", "exec", "--json"}}, chat.Options{})
	ask := func(text string) []string {
		t.Helper()
		if err := user.Say(t.Context(), agent, text); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer rcancel()
		var said []string
		for {
			f, err := user.Read(rctx)
			if err != nil {
				t.Fatalf("no answer to %q (%q): %v", text, said, err)
			}
			if f.Type == chat.TypeMsg && f.FromName == "agent-1" {
				if said = append(said, f.Content); !strings.HasPrefix(f.Content, progressMark) {
					return said
				}
			}
		}
	}
	argv := func() string {
		b, err := os.ReadFile(args)
		if err != nil {
			t.Fatal(err)
		}
		return strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", " ")
	}
	said := ask("run the tests")
	if len(said) != 2 || said[0] != progressMark+"running: make test" || !strings.HasPrefix(said[1], "tests pass\n— done in ") {
		t.Errorf("the chat got %q", said)
	}
	first := argv()
	want := `exec --json -c model_provider=thesystem -c model_providers.thesystem={name="TheSystem proxy",base_url="http://127.0.0.1:9999/openai/v1",env_key="OPENAI_API_KEY",wire_api="responses"} -`
	if first != want || strings.Contains(first, "tok-PLANTED") {
		t.Errorf("first run: %s\nwant: %s", first, want)
	}
	// The task: codex's stdin (`-`), not an argument any account could read.
	if b, _ := os.ReadFile(args + ".stdin"); !strings.HasSuffix(strings.TrimSpace(string(b)), "run the tests") {
		t.Errorf("codex's stdin: %q", b)
	}
	if fi, err := os.Stat(filepath.Join(home, ".codex")); err != nil || !fi.IsDir() {
		t.Errorf("codex's home: %v", err)
	}
	if b, _ := os.ReadFile(sessionFile); strings.TrimSpace(string(b)) != "01a236fd-bce5-75a0-8ff3-e7533a1ca284" {
		t.Errorf("the session file: %q", b)
	}
	ask("and the linter")
	if second := argv(); !strings.Contains(second, `wire_api="responses"} resume 01a236fd-bce5-75a0-8ff3-e7533a1ca284 -`) {
		t.Errorf("second run does not resume the thread: %s", second)
	}
	if err := os.WriteFile(sessionFile, []byte("gone-0000-0000-0000-000000000000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if said := ask("again"); !strings.HasPrefix(said[len(said)-1], "tests pass") || strings.Contains(argv(), "resume") {
		t.Errorf("a lost thread: %q, last run %s", said, argv())
	}
}
