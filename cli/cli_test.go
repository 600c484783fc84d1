package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// binary is the real thesystem binary, built once for the process tests.
var binary string

func TestMain(m *testing.M) {
	if prebuilt := os.Getenv("THESYSTEM_TEST_BINARY"); prebuilt != "" {
		// The real-VM test runs as a user that cannot build (make e2e-vm
		// builds it first).
		binary = prebuilt
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "thesystem-cli-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "thesystem")
	build := exec.CommandContext(context.Background(), "go", "build", "-o", binary, "../app")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // static: it is the containers' init too
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("build thesystem: " + err.Error())
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// run starts the real binary in dir with a clean environment plus env.
func run(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	return runIn(t, dir, env, "", args...)
}

// repo makes a directory that looks like a git checkout.
func repo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestExitCodes(t *testing.T) {
	bad := repo(t)
	write(t, filepath.Join(bad, "thesystem.yaml"), "mode: server\nswarm:\n  agents: -3\n")
	good := repo(t)
	write(t, filepath.Join(good, "broken.yaml"), "proxy: [\n")
	for _, tc := range []struct {
		name   string
		dir    string
		args   []string
		code   int
		stderr string
	}{
		{"version", good, []string{"version"}, 0, ""},
		{"help", good, []string{"--help"}, 0, ""},
		{"config ok", good, []string{"config"}, 0, ""},
		{"config invalid", bad, []string{"config"}, 2, "thesystem: thesystem.yaml:3: swarm.agents: must be 1..64, got -3"},
		{"start invalid config", bad, []string{"start"}, 2, "swarm.agents: must be 1..64"},
		{"doctor invalid config", bad, []string{"doctor"}, 2, "swarm.agents"},
		{"config missing --config file", good, []string{"config", "--config", "nope.yaml"}, 1, "read config: open"},
		// A --config given is read even by a command that only asks the
		// engine: never silently ignored.
		{"status with a missing --config file", good, []string{"--config", "nope.yaml", "status"}, 1, "read config: open nope.yaml"},
		{"stop with an invalid --config file", good, []string{"stop", "--config", "../" + filepath.Base(bad) + "/thesystem.yaml"}, 2, "thesystem.yaml:3: swarm.agents: must be 1..64"},
		{"logs with a broken --config file", good, []string{"logs", "--config", "broken.yaml"}, 2, "broken.yaml:1: invalid YAML"},
		{"init with --config", good, []string{"init", "--config", "x.yaml"}, 2, "init writes one: use --dir"},
		{"unknown command", good, []string{"launch"}, 2, `unknown command "launch" for "thesystem"`},
		{"unknown subcommand", good, []string{"keys", "show"}, 2, `unknown command "show" for "thesystem keys"`},
		{"unknown flag", good, []string{"status", "--colour"}, 2, "unknown flag: --colour"},
		{"too many args", good, []string{"restart", "chat", "vm"}, 2, "accepts 1 arg(s), received 2"},
		{"unknown component", good, []string{"logs", "db"}, 2, `unknown component "db"`},
		{"bad -n", good, []string{"logs", "-n", "-1"}, 2, "-n must be 0 or more"},
		{"unknown provider", good, []string{"keys", "set", "acme"}, 2, `unknown provider "acme"`},
		{"rotate needs a target", good, []string{"keys", "rotate"}, 2, "name the provider"},
		{"rotate both", good, []string{"keys", "rotate", "openai", "--tokens"}, 2, "not both"},
		{"stop with nothing running", good, []string{"stop"}, 0, ""},
		{"status without engine", good, []string{"status"}, 1, "the engine is not running (no daemon at"},
		{"status --json without engine", good, []string{"status", "--json"}, 1, "the engine is not running"},
		{"destroy needs --yes without a terminal", good, []string{"destroy"}, 2, "confirm with --yes"},
		{"reinstall without engine", good, []string{"reinstall"}, 1, "the engine is not running"},
		{"restart without engine", good, []string{"restart", "chat"}, 1, "the engine is not running"},
		{"logs without engine", good, []string{"logs", "-f"}, 1, "the engine is not running"},
		{"rotate tokens without engine", good, []string{"keys", "rotate", "--tokens"}, 1, "agent tokens exist only while it runs"},
		{"agents without engine", good, []string{"agents", "list"}, 1, "the engine is not running"},
		{"agent logs without engine", good, []string{"agents", "logs", "agent-1"}, 1, "the engine is not running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.dir, nil, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\nstderr: %s", r.code, tc.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tc.stderr)
			}
			if tc.code == 1 && strings.Contains(r.stdout, "ok") {
				t.Errorf("a failing command printed success: %q", r.stdout)
			}
		})
	}
}

func TestInit(t *testing.T) {
	dir := repo(t)
	r := run(t, dir, nil, "init")
	if r.code != 0 || !strings.Contains(r.stdout, "wrote thesystem.yaml") {
		t.Fatalf("init: %+v", r)
	}
	path := filepath.Join(dir, "thesystem.yaml")
	write(t, path, "swarm:\n  agents: 7\n")

	r = run(t, dir, nil, "init")
	if r.code != 1 || !strings.Contains(r.stderr, "already exists (use --force to overwrite it)") {
		t.Fatalf("second init: %+v", r)
	}
	if b, _ := os.ReadFile(path); string(b) != "swarm:\n  agents: 7\n" {
		t.Fatalf("init without --force changed the file: %q", b)
	}
	r = run(t, dir, nil, "init", "--force")
	if r.code != 0 {
		t.Fatalf("init --force: %+v", r)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "# thesystem.yaml") {
		t.Fatalf("init --force did not write the template: %q", b)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if r = run(t, dir, nil, "init", "--dir", "sub"); r.code != 0 {
		t.Fatalf("init --dir: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(sub, "thesystem.yaml")); err != nil {
		t.Fatal(err)
	}
}

func TestConfigJSON(t *testing.T) {
	dir := repo(t)
	write(t, filepath.Join(dir, "thesystem.yaml"), "swarm:\n  agents: ${AGENTS}\n  agnets: 3\n")
	sub := filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	r := run(t, sub, []string{"AGENTS=5", "THESYSTEM_STATE_DIR=/st"}, "config", "--json")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	var out struct {
		File   string `json:"file"`
		Config struct {
			Swarm struct{ Agents int } `json:"swarm"`
			VM    struct{ Driver, Mount string }
		} `json:"config"`
		Warnings []struct{ Line int } `json:"warnings"`
		Paths    struct {
			StateDir string `json:"state_dir"`
		} `json:"paths"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if out.File != "../../thesystem.yaml" || out.Config.Swarm.Agents != 5 || out.Config.VM.Mount != dir ||
		len(out.Warnings) != 1 || out.Warnings[0].Line != 3 || out.Paths.StateDir != "/st" {
		t.Errorf("got %+v", out)
	}
	if !strings.Contains(r.stderr, "warning: ../../thesystem.yaml:3: swarm.agnets: unknown key, ignored") {
		t.Errorf("warning not on stderr: %q", r.stderr)
	}

	// THESYSTEM_CONFIG names the file explicitly.
	other := filepath.Join(t.TempDir(), "other.yaml")
	write(t, other, "proxy:\n  port: 19999\n")
	r = run(t, sub, []string{"THESYSTEM_CONFIG=" + other}, "config")
	if r.code != 0 || !strings.Contains(r.stdout, "port: 19999") || !strings.Contains(r.stdout, "# source: "+other) {
		t.Errorf("THESYSTEM_CONFIG: %+v", r)
	}
}

func TestVersionJSON(t *testing.T) {
	r := run(t, t.TempDir(), nil, "version", "--json")
	var out struct {
		Version    string
		Components []struct{ Name, Range string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 {
		t.Fatalf("%v %+v", err, r)
	}
	if out.Version == "" || len(out.Components) < 5 {
		t.Errorf("got %+v", out)
	}
}

// TestKeyOnArgvWarned: a key given on the command line is warned about and
// never echoed back.
func TestKeyOnArgvWarned(t *testing.T) {
	const planted = "sk-ant-api03-PLANTEDkeyPLANTEDkey0123456789"
	r := run(t, t.TempDir(), keyringEnv(t), "keys", "set", "anthropic", planted)
	if !strings.Contains(r.stderr, "warning: a key on the command line") {
		t.Errorf("no warning: %q", r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "PLANTED") {
		t.Errorf("key echoed: %q %q", r.stdout, r.stderr)
	}
}

// TestEveryCommandDocumented walks the whole tree: each command has a short
// description and examples, and --help works for it as a real process.
func TestEveryCommandDocumented(t *testing.T) {
	env := &Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
	var walk func(c *cobra.Command)
	var paths [][]string
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		paths = append(paths, strings.Fields(c.CommandPath())[1:])
		if c.Short == "" || c.Example == "" {
			t.Errorf("%s: missing Short or Example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRootCommand(env))
	want := []string{"init", "start", "stop", "status", "destroy", "doctor", "logs", "config", "version",
		"reinstall", "restart", "proxy", "daemon", "keys set", "keys get", "keys list", "keys delete", "keys rotate", "agents list", "agents logs",
		"app", "login-item", "install-cli"}
	have := map[string]bool{}
	for _, p := range paths {
		have[strings.Join(p, " ")] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("command %q missing", w)
		}
	}
	dir := t.TempDir()
	for _, p := range paths {
		t.Run(strings.Join(append([]string{"root"}, p...), "_"), func(t *testing.T) {
			r := run(t, dir, nil, append(p, "--help")...)
			if r.code != 0 || !strings.Contains(r.stdout, "Examples:") {
				t.Errorf("--help: %+v", r)
			}
		})
	}
}
