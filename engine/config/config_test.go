package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env builds a LookupEnv from pairs, so tests never read the real environment.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// opts are a Linux host's, where every command is installed (gro's too).
func opts(kv ...string) Options {
	return Options{LookupEnv: env(kv...), GOOS: "linux", Home: "/home/u", LookPath: func(name string) (string, error) { return "/usr/bin/" + name, nil }}
}

func parse(t *testing.T, yaml string, o Options) (*Loaded, error) {
	t.Helper()
	return Parse("thesystem.yaml", []byte(yaml), t.TempDir(), o)
}

func issues(t *testing.T, err error) []string {
	t.Helper()
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("want *config.Error, got %T: %v", err, err)
	}
	out := make([]string, len(cerr.Issues))
	for i, is := range cerr.Issues {
		out[i] = is.String()
	}
	return out
}

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, goos, driver string
	}{
		{"linux", "linux", DriverNone},
		{"darwin", "darwin", DriverLima},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Load("", dir, Options{LookupEnv: env(), GOOS: tc.goos, Home: "/h"})
			if err != nil {
				t.Fatal(err)
			}
			want := Default()
			want.VM.Driver = tc.driver
			want.VM.Mount = dir
			if !reflect.DeepEqual(l.Config, want) {
				t.Errorf("defaults:\n got %+v\nwant %+v", l.Config, want)
			}
			if l.File != "" || len(l.Warnings) != 0 {
				t.Errorf("File=%q Warnings=%v, want none", l.File, l.Warnings)
			}
		})
	}
	// The numbers the rest of the system relies on.
	d := Default()
	if d.Server.Port != 6667 || d.Server.Dashboard != 3000 || d.Proxy.Port != 9999 || d.Mode != ModeServer ||
		d.Swarm.Agents != 2 || d.Swarm.Backend != BackendClaude || d.VM.Driver != DriverAuto {
		t.Errorf("unexpected defaults %+v", d)
	}
}

// TestTemplateIsDefault keeps the file `init` writes and Default() in step.
func TestTemplateIsDefault(t *testing.T) {
	dir := t.TempDir()
	fromFile, err := Parse("thesystem.yaml", Template(), dir, opts())
	if err != nil {
		t.Fatal(err)
	}
	fromDefaults, err := Load("", dir, opts())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromFile.Config, fromDefaults.Config) {
		t.Errorf("template:\n got %+v\nwant %+v", fromFile.Config, fromDefaults.Config)
	}
	if len(fromFile.Warnings) != 0 {
		t.Errorf("template has warnings: %v", fromFile.Warnings)
	}
}

func TestPartialFileKeepsDefaults(t *testing.T) {
	l, err := parse(t, "swarm:\n  agents: 5\nchannels: ['#dev']\n", opts())
	if err != nil {
		t.Fatal(err)
	}
	c := l.Config
	if c.Swarm.Agents != 5 || c.Swarm.Backend != BackendClaude || c.Server.Port != 6667 ||
		!reflect.DeepEqual(c.Channels, []string{"#dev"}) {
		t.Errorf("got %+v", c)
	}
}

func TestEnvSubstitution(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		env  []string
		get  func(Config) any
		want any
	}{
		{"string", "client:\n  remote: wss://${HOST}/chat\n", []string{"HOST", "chat.example"},
			func(c Config) any { return c.Client.Remote }, "wss://chat.example/chat"},
		{"number from plain", "server:\n  port: ${PORT}\n", []string{"PORT", "7000"},
			func(c Config) any { return c.Server.Port }, 7000},
		{"number from quoted", "proxy:\n  port: \"${PORT}\"\n", []string{"PORT", "7001"},
			func(c Config) any { return c.Proxy.Port }, 7001},
		{"bool", "server:\n  allowlist: ${AL}\n", []string{"AL", "false"},
			func(c Config) any { return c.Server.Allowlist }, false},
		{"default used when unset", "swarm:\n  agents: ${N:-3}\n", nil,
			func(c Config) any { return c.Swarm.Agents }, 3},
		{"default used when empty", "swarm:\n  agents: ${N:-4}\n", []string{"N", ""},
			func(c Config) any { return c.Swarm.Agents }, 4},
		{"set wins over default", "swarm:\n  agents: ${N:-4}\n", []string{"N", "6"},
			func(c Config) any { return c.Swarm.Agents }, 6},
		{"set but empty, no default", "swarm:\n  mission: \"x${E}y\"\n", []string{"E", ""},
			func(c Config) any { return c.Swarm.Mission }, "xy"},
		{"escape", "swarm:\n  mission: \"cost $${HOME} and $5\"\n", nil,
			func(c Config) any { return c.Swarm.Mission }, "cost ${HOME} and $5"},
		{"in a list", "channels: ['#${CH}']\n", []string{"CH", "team"},
			func(c Config) any { return c.Channels }, []string{"#team"}},
		{"number into string", "swarm:\n  mission: ${M}\n", []string{"M", "42"},
			func(c Config) any { return c.Swarm.Mission }, "42"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := parse(t, tc.yaml, opts(tc.env...))
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.get(l.Config); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestValidationErrors covers every error the loader can report, each with
// the file, line and key it names.
func TestValidationErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notadir"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		yaml string
		env  []string
		want []string // each must appear in one issue, in order
	}{
		{"agents negative", "mode: server\nswarm:\n  agents: -3\n",
			nil, []string{"thesystem.yaml:3: swarm.agents: must be 1..64, got -3"}},
		{"agents too many", "swarm:\n  agents: 65\n",
			nil, []string{"thesystem.yaml:2: swarm.agents: must be 1..64, got 65"}},
		{"agents not a number", "swarm:\n  agents: many\n",
			nil, []string{`thesystem.yaml:2: swarm.agents: must be a whole number, got "many"`}},
		{"chat server", "server:\n  chat: irc\n",
			nil, []string{`thesystem.yaml:2: server.chat: must be one of embedded, upstream, got "irc"`}},
		{"mode", "mode: cluster\n",
			nil, []string{`thesystem.yaml:1: mode: must be one of server, client, got "cluster"`}},
		{"port range", "server:\n  port: 70000\n",
			nil, []string{"thesystem.yaml:2: server.port: must be 1..65535, got 70000"}},
		{"port clash", "server:\n  dashboard: 9999\n",
			nil, []string{"thesystem.yaml:2: server.dashboard: port 9999 is already taken by proxy.port"}},
		{"proxy port zero", "proxy:\n  port: 0\n",
			nil, []string{"thesystem.yaml:2: proxy.port: must be 1..65535, got 0"}},
		{"allowlist not bool", "server:\n  allowlist: sometimes\n",
			nil, []string{`thesystem.yaml:2: server.allowlist: must be true or false, got "sometimes"`}},
		{"client without remote", "mode: client\n",
			nil, []string{"thesystem.yaml: client.remote: is required when mode is client"}},
		{"client bad remote", "mode: client\nclient:\n  remote: ftp://x\n",
			nil, []string{`thesystem.yaml:3: client.remote: must be a ws://, wss://, http:// or https:// URL with a host, got "ftp://x"`}},
		{"backend", "swarm:\n  backend: cursor\n",
			nil, []string{`thesystem.yaml:2: swarm.backend: must be one of claude, codex, gro, got "cursor"`}},
		{"max hops", "swarm:\n  max_hops: 0\n",
			nil, []string{"thesystem.yaml:2: swarm.max_hops: must be 1..100 (agent-to-agent hand-offs in a row), got 0"}},
		{"permissions", "swarm:\n  permissions: sometimes\n",
			nil, []string{`thesystem.yaml:2: swarm.permissions: must be auto (agents work without asking, inside their sandbox) or ask, got "sometimes"`}},
		{"group unknown provider", "swarm:\n  backends:\n    - backend: gro\n      provider: acme\n      count: 1\n",
			nil, []string{`thesystem.yaml:4: swarm.backends[0].provider: unknown provider "acme"`}},
		{"group gro needs provider", "swarm:\n  backends:\n    - backend: gro\n      count: 1\n",
			nil, []string{"thesystem.yaml:3: swarm.backends[0].provider: is required for backend gro"}},
		{"group claude non-anthropic", "swarm:\n  backends:\n    - backend: claude\n      provider: openai\n      count: 1\n",
			nil, []string{`thesystem.yaml:4: swarm.backends[0].provider: backend claude talks only to anthropic, got "openai"`}},
		{"codex non-openai", "swarm:\n  backends:\n    - backend: codex\n      provider: anthropic\n      count: 1\n",
			nil, []string{`thesystem.yaml:4: swarm.backends[0].provider: backend codex talks only to openai, got "anthropic"`}},
		{"model not a name", "swarm:\n  backends:\n    - backend: codex\n      count: 1\n      model: '-c x=1'\n",
			nil, []string{`thesystem.yaml:5: swarm.backends[0].model: is not a model name`}},
		{"group bad backend", "swarm:\n  backends:\n    - backend: vim\n      count: 1\n",
			nil, []string{`thesystem.yaml:3: swarm.backends[0].backend: must be one of claude, codex, gro, got "vim"`}},
		{"group count", "swarm:\n  backends:\n    - count: 0\n",
			nil, []string{"thesystem.yaml:3: swarm.backends[0].count: must be 1..64, got 0"}},
		{"group sum over limit", "swarm:\n  backends:\n    - count: 40\n    - count: 30\n",
			nil, []string{"thesystem.yaml:2: swarm.backends: counts add up to 70 agents, more than the limit of 64"}},
		{"agents disagree with groups", "swarm:\n  agents: 3\n  backends:\n    - count: 2\n",
			nil, []string{"thesystem.yaml:2: swarm.agents: is 3 but the counts in swarm.backends add up to 2"}},
		{"mission and file", "swarm:\n  mission: a\n  mission_file: b.md\n",
			nil, []string{"thesystem.yaml:3: swarm.mission_file: set either swarm.mission or swarm.mission_file, not both",
				"thesystem.yaml:3: swarm.mission_file: " + filepath.Join(dir, "b.md") + " does not exist"}},
		{"containerfile missing", "swarm:\n  containerfile: Containerfile\n",
			nil, []string{"thesystem.yaml:2: swarm.containerfile: " + filepath.Join(dir, "Containerfile") + " does not exist"}},
		{"driver", "vm:\n  driver: docker\n",
			nil, []string{`thesystem.yaml:2: vm.driver: must be one of auto, lima, none, got "docker"`}},
		{"cpus", "vm:\n  cpus: 0\n",
			nil, []string{"thesystem.yaml:2: vm.cpus: must be 1..128, got 0"}},
		{"memory syntax", "vm:\n  memory: lots\n",
			nil, []string{`thesystem.yaml:2: vm.memory: must be a size like 8GiB or 512MiB, got "lots"`}},
		{"memory too small", "vm:\n  memory: 256MiB\n",
			nil, []string{`thesystem.yaml:2: vm.memory: must be at least 1GiB, got "256MiB"`}},
		{"disk too small", "vm:\n  disk: 1GiB\n",
			nil, []string{`thesystem.yaml:2: vm.disk: must be at least 5GiB, got "1GiB"`}},
		{"mount missing", "vm:\n  mount: ./nope\n",
			nil, []string{"thesystem.yaml:2: vm.mount: " + filepath.Join(dir, "nope") + " does not exist"}},
		{"mount not dir", "vm:\n  mount: notadir\n",
			nil, []string{"thesystem.yaml:2: vm.mount: " + filepath.Join(dir, "notadir") + " is not a directory"}},
		{"mount empty", "vm:\n  mount: \"\"\n",
			nil, []string{"thesystem.yaml:2: vm.mount: must name the project directory"}},
		{"channels empty", "channels: []\n",
			nil, []string{"thesystem.yaml:1: channels: must list at least one channel"}},
		{"channel unquoted becomes comment", "channels:\n  - general\n",
			nil, []string{`thesystem.yaml:2: channels[0]: must be "#" then 1..31 of a-z A-Z 0-9 _ -, got "general"`}},
		{"channel twice", "channels: ['#a', '#a']\n",
			nil, []string{`thesystem.yaml:1: channels[1]: "#a" is listed twice`}},
		{"section not a mapping", "server: 5\n",
			nil, []string{`thesystem.yaml:1: server: must be a mapping of keys, got "5"`}},
		{"list not a list", "channels: '#a'\n",
			nil, []string{`thesystem.yaml:1: channels: must be a list, got "#a"`}},
		{"scalar got mapping", "mode:\n  a: b\n",
			nil, []string{"thesystem.yaml:2: mode: must be a string, got a mapping"}},
		{"duplicate key", "mode: server\nmode: client\n",
			nil, []string{"thesystem.yaml:2: mode: duplicate key (first set on line 1)"}},
		{"yaml syntax", "server:\n  port: 1\n bad: [\n",
			nil, []string{"thesystem.yaml:2: invalid YAML: did not find expected key"}},
		{"env unset", "client:\n  remote: ${NOPE}\n",
			nil, []string{"thesystem.yaml:2: client.remote: ${NOPE} is not set (write ${NOPE:-default} to give a fallback)"}},
		{"env unterminated", "client:\n  remote: ${NOPE\n",
			nil, []string{`thesystem.yaml:2: client.remote: unterminated "${"`}},
		{"env bad name", "client:\n  remote: ${1X}\n",
			nil, []string{`thesystem.yaml:2: client.remote: ${1X}: "1X" is not a valid variable name`}},
		{"env gives non-number", "server:\n  port: ${P}\n",
			[]string{"P", "http"}, []string{`thesystem.yaml:2: server.port: must be a whole number, got "http"`}},
		{"upstream unknown provider", "proxy:\n  upstreams:\n    acme: http://127.0.0.1:1\n",
			nil, []string{`thesystem.yaml:3: proxy.upstreams.acme: unknown provider "acme"`}},
		{"upstream not a URL", "proxy:\n  upstreams:\n    openai: ftp://x\n",
			nil, []string{`thesystem.yaml:3: proxy.upstreams.openai: must be an http:// or https:// URL`}},
		{"upstreams not a mapping", "proxy:\n  upstreams: [a]\n",
			nil, []string{`thesystem.yaml:2: proxy.upstreams: must be a mapping, got a list`}},
		{"budget negative", "proxy:\n  budget:\n    tokens: -1\n    requests: -2\n",
			nil, []string{"thesystem.yaml:3: proxy.budget.tokens: must be 0 (unlimited) or more, got -1",
				"thesystem.yaml:4: proxy.budget.requests: must be 0 (unlimited) or more, got -2"}},
		{"price without output", "proxy:\n  prices:\n    my-model: {input: 3}\n",
			nil, []string{`thesystem.yaml:3: proxy.prices.my-model: input and output are required`}},
		{"price negative", "proxy:\n  prices:\n    my-model:\n      input: 3\n      output: -1\n",
			nil, []string{`thesystem.yaml:5: proxy.prices.my-model.output: must be 0..10000 US dollars per million tokens, got -1`}},
		{"price not a number", "proxy:\n  prices:\n    my-model: {input: cheap, output: 1}\n",
			nil, []string{`thesystem.yaml:3: proxy.prices.my-model.input: must be a number`}},
		{"budget period", "proxy:\n  budget:\n    period: weekly\n",
			nil, []string{`thesystem.yaml:3: proxy.budget.period: must be a duration of a minute or more like 1h or 24h, got "weekly"`}},
		{"several at once", "swarm:\n  agents: 0\nvm:\n  cpus: 0\n",
			nil, []string{"thesystem.yaml:2: swarm.agents:", "thesystem.yaml:4: vm.cpus:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("thesystem.yaml", []byte(tc.yaml), dir, opts(tc.env...))
			got := issues(t, err)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d issues %q, want %d %q", len(got), got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("issue %d:\n got %s\nwant prefix %s", i, got[i], w)
				}
			}
		})
	}
}

func TestSecretsRefused(t *testing.T) {
	const planted = "sk-ant-api03-PLANTEDplantedPLANTED0123456789"
	for _, tc := range []struct {
		name string
		yaml string
		env  []string
		want string
	}{
		{"value", "swarm:\n  mission: " + planted + "\n", nil,
			"thesystem.yaml:2: this line holds what looks like a Anthropic key (sk-ant-…); provider keys never go in thesystem.yaml: store it with \"thesystem keys set <provider>\""},
		{"comment", "# key: " + planted + "\nmode: server\n", nil, "thesystem.yaml:1: this line holds"},
		{"unknown key", "anthropic_api_key: " + planted + "\n", nil, "thesystem.yaml:1: this line holds"},
		{"google", "client:\n  remote: AIzaSyPLANTEDplantedPLANTEDplanted0123456\n", nil,
			"thesystem.yaml:2: this line holds what looks like a Google API key (AIza…)"},
		{"through env", "swarm:\n  mission: ${K}\n", []string{"K", planted},
			"thesystem.yaml:2: swarm.mission: the environment variable here expands to what looks like a Anthropic key"},
		// Escapes hide a key from the raw line, not from the decoded value.
		{"unicode escape", "swarm:\n  mission: \"sk\\u002dant-api03-PLANTEDplantedPLANTED0123456789\"\n", nil,
			"thesystem.yaml:2: this value decodes to what looks like a Anthropic key"},
		{"hex escape", "swarm:\n  mission: \"sk\\x2dant\\x2dapi03-PLANTEDplantedPLANTED0123456789\"\n", nil,
			"thesystem.yaml:2: this value decodes to what looks like a Anthropic key"},
		{"escaped line break", "swarm:\n  mission: \"sk-ant-\\\n  api03-PLANTEDplantedPLANTED0123456789\"\n", nil,
			"thesystem.yaml:2: this value decodes to what looks like a Anthropic key"},
		{"as a mapping key", "proxy:\n  upstreams:\n    \"sk\\u002dant-api03-PLANTEDplantedPLANTED0123456789\": http://x\n", nil,
			"thesystem.yaml:3: this value decodes to what looks like a Anthropic key"},
		{"a line over 1 MiB", "swarm:\n  mission: " + strings.Repeat("x", 1<<20) + planted + "\n", nil,
			"thesystem.yaml:2: this line is longer than 1024 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.yaml, opts(tc.env...))
			got := issues(t, err)
			if len(got) != 1 || !strings.HasPrefix(got[0], tc.want) {
				t.Fatalf("got %q, want prefix %q", got, tc.want)
			}
			if strings.Contains(err.Error(), "PLANTED") {
				t.Fatalf("error message leaks the key: %v", err)
			}
		})
	}
}

func TestUnknownKeysWarn(t *testing.T) {
	l, err := parse(t, "mode: server\nswarm:\n  agent: 3\n  Mission_File: x\nextra:\n  deep: [1, 2]\n", opts())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range l.Warnings {
		got = append(got, w.String())
	}
	want := []string{
		`thesystem.yaml:3: swarm.agent: unknown key, ignored (known: agents, backend, mission, mission_file, containerfile, backends, permissions, max_hops)`,
		`thesystem.yaml:4: swarm.Mission_File: unknown key, ignored (did you mean "mission_file"?)`,
		`thesystem.yaml:5: extra: unknown key, ignored (known: mode, server, client, swarm, vm, proxy, channels)`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n got %q\nwant %q", got, want)
	}
	if l.Config.Swarm.Agents != 2 {
		t.Errorf("unknown key changed the config: %+v", l.Config.Swarm)
	}
}

func TestProxySection(t *testing.T) {
	l, err := parse(t, "proxy:\n  port: 19999\n  upstreams:\n    anthropic: http://127.0.0.1:8080\n    grok: ${X:-https://gw.example}\n  budget:\n    tokens: 1000\n    period: 1h\n", opts())
	if err != nil {
		t.Fatal(err)
	}
	p := l.Config.Proxy
	if p.Port != 19999 || p.Upstreams["anthropic"] != "http://127.0.0.1:8080" || p.Upstreams["grok"] != "https://gw.example" ||
		p.Budget.Tokens != 1000 || p.Budget.BudgetPeriod() != time.Hour {
		t.Errorf("got %+v", p)
	}
}

func TestBackendGroups(t *testing.T) {
	l, err := parse(t, "swarm:\n  backends:\n    - count: 2\n    - backend: gro\n      provider: groq\n      count: 3\n      model: llama\n", opts())
	if err != nil {
		t.Fatal(err)
	}
	s := l.Config.Swarm
	want := []BackendGroup{
		{Backend: "claude", Provider: "anthropic", Count: 2},
		{Backend: "gro", Provider: "groq", Count: 3, Model: "llama"},
	}
	if s.Agents != 5 || !reflect.DeepEqual(s.AgentGroups(), want) {
		t.Errorf("got agents=%d groups=%+v", s.Agents, s.AgentGroups())
	}
	l, err = parse(t, "swarm:\n  backends:\n    - count: 1\n    - backend: codex\n      count: 2\n      model: gpt-5.1-codex\n", opts())
	if err != nil {
		t.Fatal(err)
	}
	want = []BackendGroup{{Backend: "claude", Provider: "anthropic", Count: 1}, {Backend: "codex", Provider: "openai", Count: 2, Model: "gpt-5.1-codex"}}
	if !reflect.DeepEqual(l.Config.Swarm.AgentGroups(), want) {
		t.Errorf("a mixed swarm: %+v", l.Config.Swarm.AgentGroups())
	}
	l, err = parse(t, "swarm:\n  backend: codex\n  agents: 3\n", opts())
	if err != nil || !reflect.DeepEqual(l.Config.Swarm.AgentGroups(), []BackendGroup{{Backend: "codex", Provider: "openai", Count: 3}}) {
		t.Errorf("backend codex: %v %+v", err, l)
	}
	plain := Default().Swarm
	if got := plain.AgentGroups(); len(got) != 1 || got[0].Count != 2 || got[0].Backend != "claude" {
		t.Errorf("plain swarm groups = %+v", got)
	}
}

// TestGroNotInstalled: backend gro is refused when its runtime is not
// installed, at validation (start), not per agent as each starts.
func TestGroNotInstalled(t *testing.T) {
	o := opts()
	o.LookPath = func(name string) (string, error) { return "", fmt.Errorf("%s: not found", name) }
	for _, tc := range []struct{ name, yaml, want string }{
		{"backend", "swarm:\n  backend: gro\n", "thesystem.yaml:2: swarm.backend: gro's runtime is not installed (no gro command on PATH: npm install -g @tjamescouch/gro); " +
			"for agents not tied to Anthropic use backend: codex"},
		{"group", "swarm:\n  backends:\n    - count: 1\n    - backend: gro\n      provider: groq\n      count: 1\n",
			"thesystem.yaml:4: swarm.backends[1].backend: gro's runtime is not installed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.yaml, o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := parse(t, "swarm:\n  backend: codex\n", o); err != nil {
		t.Errorf("codex needs nothing installed on the host: %v", err)
	}
}

func TestPathsResolve(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "home", "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "MISSION.md"), []byte("do it"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := opts()
	o.Home = filepath.Join(root, "home")
	l, err := Parse("thesystem.yaml", []byte("vm:\n  mount: ~/dev\nswarm:\n  mission_file: MISSION.md\n"), root, o)
	if err != nil {
		t.Fatal(err)
	}
	if l.Config.VM.Mount != filepath.Join(root, "home", "dev") || l.Config.Swarm.MissionFile != filepath.Join(root, "MISSION.md") {
		t.Errorf("got mount=%q mission_file=%q", l.Config.VM.Mount, l.Config.Swarm.MissionFile)
	}
}

func TestDiscover(t *testing.T) {
	mk := func(t *testing.T, root string, dirs ...string) {
		t.Helper()
		for _, d := range dirs {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	touch := func(t *testing.T, p string) {
		t.Helper()
		if err := os.WriteFile(p, []byte("mode: server\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root string)
		start string
		want  string // relative to root; "" = none
	}{
		{"in cwd", func(t *testing.T, r string) {
			mk(t, r, "repo/.git", "repo/a")
			touch(t, filepath.Join(r, "repo/a", FileName))
		},
			"repo/a", "repo/a/" + FileName},
		{"at git root", func(t *testing.T, r string) {
			mk(t, r, "repo/.git", "repo/a/b")
			touch(t, filepath.Join(r, "repo", FileName))
		},
			"repo/a/b", "repo/" + FileName},
		{"nearest wins", func(t *testing.T, r string) {
			mk(t, r, "repo/.git", "repo/a/b")
			touch(t, filepath.Join(r, "repo", FileName))
			touch(t, filepath.Join(r, "repo/a", FileName))
		}, "repo/a/b", "repo/a/" + FileName},
		{"not above git root", func(t *testing.T, r string) { mk(t, r, "repo/.git", "repo/a"); touch(t, filepath.Join(r, FileName)) },
			"repo/a", ""},
		{"worktree .git file", func(t *testing.T, r string) {
			mk(t, r, "wt/a")
			touch(t, filepath.Join(r, "wt/.git"))
			touch(t, filepath.Join(r, "wt", FileName))
		}, "wt/a", "wt/" + FileName},
		{"outside a repo only cwd", func(t *testing.T, r string) { mk(t, r, "plain/a"); touch(t, filepath.Join(r, "plain", FileName)) },
			"plain/a", ""},
		{"none", func(t *testing.T, r string) { mk(t, r, "repo/.git") }, "repo", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.setup(t, root)
			got, err := Discover(filepath.Join(root, tc.start))
			if err != nil {
				t.Fatal(err)
			}
			want := ""
			if tc.want != "" {
				want = filepath.Join(root, tc.want)
			}
			if got != want {
				t.Errorf("Discover = %q, want %q", got, want)
			}
		})
	}
	t.Run("a directory named like the file", func(t *testing.T) {
		root := t.TempDir()
		mk(t, root, FileName)
		if _, err := Discover(root); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestWriteDefault(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, FileName)
	if err := WriteDefault(p, false); err != nil {
		t.Fatal(err)
	}
	mine := []byte("mode: client # mine\n")
	if err := os.WriteFile(p, mine, 0o644); err != nil {
		t.Fatal(err)
	}
	err := WriteDefault(p, false)
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second write: %v", err)
	}
	if got, _ := os.ReadFile(p); string(got) != string(mine) {
		t.Fatalf("existing file changed without --force: %q", got)
	}
	if err := WriteDefault(p, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != string(Template()) {
		t.Fatalf("--force did not write the template")
	}
	if _, err := os.Stat(p + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp file left behind: %v", err)
	}
}

func TestSizes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"8GiB", 8 << 30, false}, {"512MiB", 512 << 20, false}, {"40G", 40 << 30, false},
		{"1.5GiB", 3 << 29, false}, {"1024", 1024, false}, {"2TiB", 2 << 40, false},
		{"lots", 0, true}, {"-1GiB", 0, true}, {"8 PiB", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if (err != nil) != tc.bad || got != tc.want {
				t.Errorf("ParseSize(%q) = %d, %v", tc.in, got, err)
			}
		})
	}
	if FormatSize(5<<30) != "5GiB" || FormatSize(1500) != "1500B" {
		t.Errorf("FormatSize: %s %s", FormatSize(5<<30), FormatSize(1500))
	}
}

func TestHostPaths(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		want Paths
	}{
		{"overrides", []string{"THESYSTEM_STATE_DIR", "/s", "THESYSTEM_RUNTIME_DIR", "/r"}, Paths{"/s", "/r"}},
		{"xdg runtime", []string{"THESYSTEM_STATE_DIR", "/s", "XDG_RUNTIME_DIR", "/run/user/1"}, Paths{"/s", "/run/user/1/thesystem"}},
		{"no runtime dir", []string{"THESYSTEM_STATE_DIR", "/s"}, Paths{"/s", "/s/run"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := HostPaths(env(tc.env...), "/home/u"); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	// The platform default, whichever platform this test runs on.
	p := HostPaths(env(), "/home/u")
	if !strings.HasPrefix(p.StateDir, "/home/u/") || p.RuntimeDir != p.StateDir+"/run" {
		t.Errorf("platform default %+v", p)
	}
}

// An error quotes what the user wrote only when it is short and looks like
// a name: a secret typed in the wrong place is never repeated.
func TestErrorsQuoteOnlyNames(t *testing.T) {
	const secretish = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg" // not key-shaped, but a secret for all we know
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"short name shown", "swarm:\n  backend: clade\n", `must be one of claude, codex, gro, got "clade"`},
		{"long value hidden", "swarm:\n  backend: " + secretish + "\n", "got (value not shown)"},
		{"number", "proxy:\n  port: " + secretish + "\n", "got (value not shown)"},
		{"upstream with credentials", "proxy:\n  upstreams:\n    anthropic: https://u:hunter2@x.example\n", "got (value not shown)"},
		{"unknown provider", "swarm:\n  backends:\n    - provider: " + secretish + "\n", "unknown provider (value not shown)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.yaml, opts())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secretish) || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error repeats the value: %v", err)
			}
		})
	}
}

// TestWithBackend: the default file with another runtime parses to the
// defaults but for swarm.backend (what a guided init writes).
func TestWithBackend(t *testing.T) {
	b, err := WithBackend(BackendCodex)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Parse("thesystem.yaml", b, t.TempDir(), opts())
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Swarm.Backend = BackendCodex
	if !reflect.DeepEqual(l.Config.Swarm, want.Swarm) {
		t.Errorf("swarm %+v, want %+v", l.Config.Swarm, want.Swarm)
	}
	if _, err := WithBackend("vim"); err == nil {
		t.Error("an unknown backend was written")
	}
}

// TestClientRemote: mode client needs a wss:// server (ws:// only on the
// loopback; http(s):// are taken as ws(s)://) and, when given, a CA file
// of PEM certificates.
func TestClientRemote(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	write("junk.pem", "not a certificate\n")
	for _, tc := range []struct{ name, client, remote, err string }{
		{"wss", "remote: wss://chat.example.com/team", "wss://chat.example.com/team", ""},
		{"https", "remote: https://chat.example.com", "wss://chat.example.com", ""},
		{"loopback ws", "remote: ws://127.0.0.1:7000", "ws://127.0.0.1:7000", ""},
		{"ca file", "remote: wss://chat.example.com\n  ca_file: ca.pem", "wss://chat.example.com", ""},
		{"credentials", "remote: wss://alice:s3cret@chat.example.com", "", "thesystem.yaml:4: client.remote: carries credentials (user:password@)"},
		{"plain ws", "remote: ws://chat.example.com", "", `thesystem.yaml:4: client.remote: "ws://chat.example.com" would carry the team's chat unencrypted: use wss://`},
		{"missing ca", "remote: wss://x.example\n  ca_file: nope.pem", "", "thesystem.yaml:5: client.ca_file: " + filepath.Join(dir, "nope.pem") + " does not exist"},
		{"junk ca", "remote: wss://x.example\n  ca_file: junk.pem", "", "thesystem.yaml:5: client.ca_file: " + filepath.Join(dir, "junk.pem") + " holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Parse("thesystem.yaml", []byte("mode: client\n\nclient:\n  "+tc.client+"\n"), dir, opts())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "s3cret") {
					t.Errorf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || l.Config.Client.Remote != tc.remote {
				t.Errorf("got %v %+v, want remote %s", err, l, tc.remote)
			}
		})
	}
}

// TestModelNames: backends[].model is a model's name as providers spell
// them, nothing that could be read as an option or carry a control
// character into the runtime's arguments.
func TestModelNames(t *testing.T) {
	for _, tc := range []struct {
		model string
		ok    bool
	}{
		{"gpt-5-codex", true}, {"claude-sonnet-4-5@20250929", true}, {"models/gemini-2.5-pro", true}, {"o4-mini", true},
		{`"gpt\u0000x"`, false}, {`"gpt\u00a05"`, false}, {`"gpt 5"`, false}, {"-c", false}, {`"x=1"`, false},
	} {
		_, err := Parse("thesystem.yaml", []byte("swarm:\n  backends:\n    - backend: codex\n      count: 1\n      model: "+tc.model+"\n"), t.TempDir(), opts())
		if (err == nil) != tc.ok {
			t.Errorf("model %s: %v", tc.model, err)
		}
	}
}
