// Package config is thesystem.yaml: its schema, the defaults for every key,
// ${VAR} substitution, validation with errors that name the file, line and
// key at fault, discovery from the working directory up to the git root, and
// the commented default file that `thesystem init` writes.
//
// A missing file is not an error: Default() is a complete, valid
// configuration. Keys live in the OS key store, never here, and a value that
// looks like a provider key is refused.
package config

// FileName is the name discovery looks for.
const FileName = "thesystem.yaml"

// Modes.
const (
	ModeServer = "server" // run the whole stack on this machine
	ModeClient = "client" // agents join a remote chat server
)

// Agent runtimes (swarm backends).
const (
	BackendClaude = "claude" // @anthropic-ai/claude-code, provider anthropic
	BackendCodex  = "codex"  // @openai/codex, provider openai
	BackendGro    = "gro"    // @tjamescouch/gro, multi-provider (when installed)
)

// Backends are the agent runtimes swarm.backend accepts.
func Backends() []string { return []string{BackendClaude, BackendCodex, BackendGro} }

// BackendProvider is the provider a backend talks to when none is given
// ("" when it must be given: gro talks to any).
func BackendProvider(backend string) string {
	switch backend {
	case BackendClaude:
		return "anthropic"
	case BackendCodex:
		return "openai"
	}
	return ""
}

// VM drivers.
const (
	DriverAuto = "auto" // lima on macOS, none on Linux
	DriverLima = "lima" // a Lima VM is the firebreak
	DriverNone = "none" // host podman, no firebreak
)

// Limits enforced by validation.
const (
	MaxAgents = 64
	MaxCPUs   = 128
)

// Config is a resolved thesystem.yaml.
type Config struct {
	Mode     string   `yaml:"mode" json:"mode"`
	Server   Server   `yaml:"server" json:"server"`
	Client   Client   `yaml:"client" json:"client"`
	Swarm    Swarm    `yaml:"swarm" json:"swarm"`
	VM       VM       `yaml:"vm" json:"vm"`
	Proxy    Proxy    `yaml:"proxy" json:"proxy"`
	Channels []string `yaml:"channels" json:"channels"`
}

// Server configures the local chat server and dashboard (mode: server).
type Server struct {
	Port      int  `yaml:"port" json:"port"`
	Dashboard int  `yaml:"dashboard" json:"dashboard"`
	Allowlist bool `yaml:"allowlist" json:"allowlist"`
	// Chat picks the chat server: embedded (ours, in a container) or
	// upstream (the agentchat npm package's, where it is installed).
	Chat string `yaml:"chat" json:"chat"`
}

// Chat servers.
const (
	ChatEmbedded = "embedded"
	ChatUpstream = "upstream"
)

// Client configures the remote chat server (mode: client): the agents
// and the dashboard join it through the host, which alone dials out.
type Client struct {
	// Remote is the server's wss:// URL (ws:// only to the loopback).
	Remote string `yaml:"remote" json:"remote"`
	// CAFile, when set, holds the PEM certificates a wss:// server's
	// certificate must chain to, instead of the system's roots.
	CAFile string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
}

// Swarm is the set of agents to run.
type Swarm struct {
	Agents      int    `yaml:"agents" json:"agents"`
	Backend     string `yaml:"backend" json:"backend"`
	Mission     string `yaml:"mission,omitempty" json:"mission,omitempty"`
	MissionFile string `yaml:"mission_file,omitempty" json:"mission_file,omitempty"`
	// Containerfile, when set, builds the agent image instead of the
	// default one made from claude-code's files; the image must have
	// claude on its PATH.
	Containerfile string         `yaml:"containerfile,omitempty" json:"containerfile,omitempty"`
	Backends      []BackendGroup `yaml:"backends,omitempty" json:"backends,omitempty"`
	// Permissions: auto (the default) lets the agents edit and run
	// commands without asking, the container being the boundary (no
	// network, no keys, read-only root); ask keeps the runtime's prompts,
	// which in a task with no one to answer means it can do neither.
	Permissions string `yaml:"permissions" json:"permissions"`
	// MaxHops bounds agent-to-agent hand-offs: an agent takes at most this
	// many tasks in a row from other agents, with none from a person.
	MaxHops int `yaml:"max_hops" json:"max_hops"`
}

// The values of swarm.permissions.
const (
	PermissionsAuto = "auto"
	PermissionsAsk  = "ask"
)

// BackendGroup is one line of the per-backend list: count agents of a
// runtime talking to one provider with one model.
type BackendGroup struct {
	Backend  string `yaml:"backend" json:"backend"`
	Provider string `yaml:"provider" json:"provider"`
	Count    int    `yaml:"count" json:"count"`
	Model    string `yaml:"model,omitempty" json:"model,omitempty"`
}

// VM configures the VM tier.
type VM struct {
	Driver string `yaml:"driver" json:"driver"`
	CPUs   int    `yaml:"cpus" json:"cpus"`
	Memory string `yaml:"memory" json:"memory"`
	Disk   string `yaml:"disk" json:"disk"`
	Mount  string `yaml:"mount" json:"mount"`
}

// Proxy configures agentauth, the key proxy.
type Proxy struct {
	Port int `yaml:"port" json:"port"`
	// Upstreams overrides providers' base URLs (a corporate gateway, or a
	// local fake in tests).
	Upstreams map[string]string `yaml:"upstreams,omitempty" json:"upstreams,omitempty"`
	// Budget limits what each agent may spend per period.
	Budget Budget `yaml:"budget,omitempty" json:"budget"`
	// Prices add or override models' prices for the usage's cost
	// estimates, by model name (a dated release of it matches too).
	Prices map[string]Price `yaml:"prices,omitempty" json:"prices,omitempty"`
}

// Price is a model's price in US dollars per million tokens. Input and
// output are required; cache reads and writes left out cost the input
// price.
type Price struct {
	Input      *float64 `yaml:"input" json:"input"`
	Output     *float64 `yaml:"output" json:"output"`
	CacheRead  *float64 `yaml:"cache_read,omitempty" json:"cache_read,omitempty"`
	CacheWrite *float64 `yaml:"cache_write,omitempty" json:"cache_write,omitempty"`
}

// Budget is the per-agent spending limit; 0 means unlimited.
type Budget struct {
	Tokens   int64  `yaml:"tokens,omitempty" json:"tokens,omitempty"`
	Requests int64  `yaml:"requests,omitempty" json:"requests,omitempty"`
	Period   string `yaml:"period,omitempty" json:"period"`
}

// Default returns the configuration used for every key the file leaves out.
func Default() Config {
	return Config{
		Mode:   ModeServer,
		Server: Server{Port: 6667, Dashboard: 3000, Allowlist: true, Chat: ChatEmbedded},
		Client: Client{Remote: ""},
		Swarm:  Swarm{Agents: 2, Backend: BackendClaude, Permissions: PermissionsAuto, MaxHops: 8},
		VM: VM{
			Driver: DriverAuto,
			CPUs:   4,
			Memory: "8GiB",
			Disk:   "40GiB",
			Mount:  ".",
		},
		Proxy:    Proxy{Port: 9999, Budget: Budget{Period: "24h"}},
		Channels: []string{"#general", "#agents"},
	}
}

// AgentGroups returns the swarm as a list of groups, expanding the plain
// `agents: N` + `backend:` form into one group.
func (s Swarm) AgentGroups() []BackendGroup {
	if len(s.Backends) > 0 {
		return s.Backends
	}
	return []BackendGroup{{Backend: s.Backend, Provider: BackendProvider(s.Backend), Count: s.Agents}}
}
