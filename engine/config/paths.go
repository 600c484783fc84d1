package config

import "path/filepath"

// Paths are where TheSystem keeps its files on this host.
type Paths struct {
	// StateDir holds the user token, logs, the Lima home and markers.
	StateDir string `json:"state_dir"`
	// RuntimeDir holds the sockets: the local API and the proxy.
	RuntimeDir string `json:"runtime_dir"`
}

// HostPaths resolves the state and runtime directories: THESYSTEM_STATE_DIR
// and THESYSTEM_RUNTIME_DIR win; otherwise the platform's convention
// (see defaultStateDir) and $XDG_RUNTIME_DIR/thesystem, falling back to
// <state>/run.
func HostPaths(lookup func(string) (string, bool), home string) Paths {
	get := func(k string) string {
		v, _ := lookup(k)
		return v
	}
	p := Paths{StateDir: get("THESYSTEM_STATE_DIR"), RuntimeDir: get("THESYSTEM_RUNTIME_DIR")}
	if p.StateDir == "" {
		p.StateDir = defaultStateDir(get, home)
	}
	if p.RuntimeDir == "" {
		if xdg := get("XDG_RUNTIME_DIR"); xdg != "" {
			p.RuntimeDir = filepath.Join(xdg, "thesystem")
		} else {
			p.RuntimeDir = filepath.Join(p.StateDir, "run")
		}
	}
	return p
}

// SocketDir holds the proxy's socket, mounted read-only into the agent
// containers. Nothing in a container can write there.
func (p Paths) SocketDir() string { return filepath.Join(p.RuntimeDir, "sockets") }

// ServiceDir holds the chat server's socket: written by its container,
// mounted read-only into the agents' and the dashboard's.
func (p Paths) ServiceDir() string { return filepath.Join(p.RuntimeDir, "services") }

// ProxySocket is the key proxy's unix socket, which the sandboxes reach.
func (p Paths) ProxySocket() string { return filepath.Join(p.SocketDir(), "agentauth.sock") }

// ChatSocket is the chat server's unix socket.
func (p Paths) ChatSocket() string { return filepath.Join(p.ServiceDir(), "chat.sock") }

// DashboardDir holds the dashboard's socket, apart from ServiceDir, which
// the agents' containers see.
func (p Paths) DashboardDir() string { return filepath.Join(p.RuntimeDir, "dashboard") }

// DashboardSocket is the dashboard's unix socket.
func (p Paths) DashboardSocket() string { return filepath.Join(p.DashboardDir(), "dashboard.sock") }

// AgentsDir holds the agents' token dirs (with vm.driver lima, the VM
// sees it read-only).
func (p Paths) AgentsDir() string { return filepath.Join(p.RuntimeDir, "agents") }

// UserIdentity is the user's chat key (0600): the CLI, the menu and the
// dashboard's compose box speak as "user" with it.
func (p Paths) UserIdentity() string { return filepath.Join(p.StateDir, "identity.pem") }

// EngineLog is where the daemon keeps its components' lines (JSON, one a
// line; the previous daemon's in EngineLog.1), readable once it is gone.
func (p Paths) EngineLog() string { return filepath.Join(p.StateDir, "engine-log.jsonl") }

// ChatHistory keeps the team chat's messages across the engine's restarts
// (JSON lines; at 8 MiB it becomes .1).
func (p Paths) ChatHistory() string { return filepath.Join(p.StateDir, "chat-history.jsonl") }

// AgentIdentity is an agent's lasting chat key (0600) with mode client:
// the identity a remote server's admin admits (with the embedded server,
// each run of an agent gets a key of its own instead).
func (p Paths) AgentIdentity(agent string) string {
	return filepath.Join(p.StateDir, "identities", agent+".pem")
}

// DashboardIdentity is the dashboard's chat key, kept here (0600) and
// copied into DashboardIdentityDir for its container.
func (p Paths) DashboardIdentity() string { return filepath.Join(p.StateDir, "dashboard-identity.pem") }

// DashboardKey is the key a browser shows the dashboard (0600): only the
// user, who can read it, gets the URL with it (`thesystem dashboard url`).
func (p Paths) DashboardKey() string { return filepath.Join(p.StateDir, "dashboard.key") }

// DashboardIdentityDir holds the dashboard's chat key, mounted read-only
// into its container only (with the VM, through the agents' share).
func (p Paths) DashboardIdentityDir() string { return filepath.Join(p.AgentsDir(), "_dashboard") }

// AgentDir holds one agent's token.
func (p Paths) AgentDir(agent string) string { return filepath.Join(p.AgentsDir(), agent) }

// GuestBinDir holds the linux build of thesystem the VM's containers run
// as their init (the VM sees it read-only).
func (p Paths) GuestBinDir() string { return filepath.Join(p.StateDir, "guest-bin") }

// VMForwardDir is where the VM's chat and dashboard sockets appear on the
// host.
func (p Paths) VMForwardDir() string { return filepath.Join(p.RuntimeDir, "vm") }

// PodmanSocket is the podman service the engine runs (vm.driver none).
func (p Paths) PodmanSocket() string { return filepath.Join(p.RuntimeDir, "podman.sock") }

// RuntimesDir caches the agent runtimes installed from npm.
func (p Paths) RuntimesDir() string { return filepath.Join(p.StateDir, "runtimes") }

// ProxyControlSocket is where a foreground proxy (`thesystem proxy`) takes
// requests to reload its keys: `keys set` reaches it there (0600, in the
// private runtime dir), never by a signal to a pid read from a file.
func (p Paths) ProxyControlSocket() string { return filepath.Join(p.RuntimeDir, "agentauth.ctl") }

// UserTokenFile holds the user's proxy token (0600), new on each start.
func (p Paths) UserTokenFile() string { return filepath.Join(p.StateDir, "agentauth.token") }

// AuditFile is the proxy's audit log, one JSON line per request.
func (p Paths) AuditFile() string { return filepath.Join(p.StateDir, "audit.log") }

// APISocket is the engine's local API socket.
func (p Paths) APISocket() string { return filepath.Join(p.RuntimeDir, "api.sock") }

// DaemonLog is where a daemon started by `thesystem start` writes.
func (p Paths) DaemonLog() string { return filepath.Join(p.StateDir, "daemon.log") }

// ImageCacheDir holds what the agents' images are built from and is
// slow to make: the Debian base (built once from the archive).
func (p Paths) ImageCacheDir() string { return filepath.Join(p.StateDir, "images") }

// LimaHome is the private LIMA_HOME of the VM tier, so TheSystem's VM never
// mixes with the user's own Lima instances.
func (p Paths) LimaHome() string { return filepath.Join(p.StateDir, "lima") }
