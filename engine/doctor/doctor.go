// Package doctor diagnoses a machine and a configuration: tools present
// and their versions, the VM driver, the key store and its keys, ports
// free or ours, the proxy's health, compatibility. Each check has a stable
// id, a status and a fix.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/compat"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
	"github.com/thesystem-dev/thesystem/engine/secrets"
)

// Inputs is what the checks look at.
type Inputs struct {
	Config *config.Loaded
	// Store is the key store, or nil with StoreErr saying why not.
	Store    secrets.Store
	StoreErr error
	Version  string
	// Ours lists the ports the running engine holds (they count as ok).
	Ours map[int]bool
	// LookPath finds tools; nil means exec.LookPath.
	LookPath func(string) (string, error)
	// MissingRuntimes are the agents' runtimes not downloaded yet (the
	// first start downloads them), by npm package and version.
	MissingRuntimes []string
	// VM is the Lima VM's state (vm.driver lima), "" if unknown.
	VM string
	// GOOS is the host's OS; "" means runtime.GOOS.
	GOOS string
	// Account is whose podman runs the containers (vm.driver none); nil
	// means this process's user.
	Account *Account
}

// Account is a user whose podman runs the containers. Unless it is root,
// that podman is rootless: it maps the containers' ids into the user's
// subordinate ranges with newuidmap and newgidmap.
type Account struct {
	Name string
	UID  int
	// SubUID and SubGID are the files of subordinate ranges; "" means
	// /etc/subuid and /etc/subgid.
	SubUID, SubGID string
	// Cgroups is where the cgroup filesystem is mounted; "" means
	// /sys/fs/cgroup.
	Cgroups string
}

// Run runs every check.
func Run(ctx context.Context, in Inputs) []api.Check {
	if in.LookPath == nil {
		in.LookPath = exec.LookPath
	}
	if in.GOOS == "" {
		in.GOOS = runtime.GOOS
	}
	cfg := in.Config.Config
	var out []api.Check
	add := func(c api.Check) { out = append(out, c) }

	src := "defaults (no thesystem.yaml)"
	if in.Config.File != "" {
		src = in.Config.File
	}
	add(api.Check{ID: "config", Status: api.CheckOK, Detail: "valid: " + src})

	results, err := compat.Default(in.Version).CheckAll(nil)
	if err != nil {
		add(api.Check{ID: "compat", Status: api.CheckFail, Detail: err.Error()})
	} else if b := compat.Blocking(results); len(b) > 0 {
		add(api.Check{ID: "compat", Status: api.CheckFail, Detail: b[0].Component + ": " + b[0].Problem, Fix: b[0].Suggestion})
	} else {
		add(api.Check{ID: "compat", Status: api.CheckOK, Detail: fmt.Sprintf("%d components within the matrix", len(results))})
	}

	add(toolCheck(ctx, in.LookPath, "tool.podman", "podman", "install podman (Debian: apt-get install podman; macOS: it runs inside the VM)", cfg.VM.Driver == config.DriverNone))
	if cfg.VM.Driver == config.DriverNone {
		// The agents' Debian userland (shell, git, …) is built with it.
		add(toolCheck(ctx, in.LookPath, "tool.mmdebstrap", "mmdebstrap", "install mmdebstrap (Debian: apt-get install mmdebstrap), then `thesystem reinstall`: without it the agents have no shell or git", false))
	}
	if cfg.VM.Driver == config.DriverNone && in.GOOS == "linux" {
		if in.Account == nil {
			in.Account = currentAccount()
		}
		if in.Account.UID != 0 {
			out = append(out, rootlessChecks(in.LookPath, *in.Account)...)
		}
	}
	if cfg.VM.Driver == config.DriverNone {
		add(api.Check{ID: "tool.limactl", Status: api.CheckOK, Detail: "not needed with vm.driver none"})
	} else {
		add(toolCheck(ctx, in.LookPath, "tool.limactl", "limactl", "install Lima (macOS: brew install lima) or set vm.driver: none", cfg.VM.Driver == config.DriverLima))
	}
	if cfg.VM.Driver == config.DriverLima && in.GOOS == "linux" {
		// macOS runs the VM with Virtualization.framework; Linux with QEMU.
		qemu := "qemu-system-" + map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
		add(toolCheck(ctx, in.LookPath, "tool.qemu", qemu, "install QEMU (Debian: apt-get install qemu-system-x86 qemu-utils)", true))
	}

	switch cfg.VM.Driver {
	case config.DriverNone:
		add(api.Check{ID: "vm", Status: api.CheckWarn, Detail: "vm.driver none: agents run in the host's podman, without the VM firebreak",
			Fix: "set vm.driver: lima for the VM tier"})
	default:
		c := api.Check{ID: "vm", Status: api.CheckOK, Detail: "vm.driver " + cfg.VM.Driver}
		if in.VM != "" {
			c.Detail += ": the VM is " + in.VM
			if strings.HasPrefix(in.VM, "broken") {
				c.Status, c.Fix = api.CheckFail, "run `thesystem destroy`, then `thesystem start` to rebuild the VM"
			}
		}
		add(c)
	}

	if len(in.MissingRuntimes) == 0 {
		add(api.Check{ID: "provisioning", Status: api.CheckOK, Detail: "the agents' runtimes are downloaded"})
	} else {
		add(api.Check{ID: "provisioning", Status: api.CheckWarn, Detail: "not downloaded yet: " + strings.Join(in.MissingRuntimes, ", "),
			Fix: "the first `thesystem start` downloads them (about 175 MB each) from the npm registry ($npm_config_registry, else registry.npmjs.org)"})
	}

	add(keysCheck(ctx, in))
	add(chatCheck(cfg))

	for _, p := range []struct {
		id   string
		key  string
		port int
	}{{"port.proxy", "proxy.port", cfg.Proxy.Port}, {"port.chat", "server.port", cfg.Server.Port}, {"port.dashboard", "server.dashboard", cfg.Server.Dashboard}} {
		add(portCheck(ctx, p.id, p.key, p.port, in.Ours[p.port]))
	}
	if in.Ours[cfg.Proxy.Port] {
		add(proxyCheck(ctx, cfg.Proxy.Port))
	}
	return out
}

func toolCheck(ctx context.Context, look func(string) (string, error), id, tool, fix string, needed bool) api.Check {
	path, err := look(tool)
	if err != nil {
		st := api.CheckWarn
		if needed {
			st = api.CheckFail
		}
		return api.Check{ID: id, Status: st, Detail: tool + " not found on PATH", Fix: fix}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	if tool == "podman" { // as the engine runs it: the user's podman setup left out
		cmd.Env = sandbox.PodmanEnv(os.Environ(), "")
	}
	b, err := cmd.Output()
	if err != nil {
		return api.Check{ID: id, Status: api.CheckFail, Detail: fmt.Sprintf("%s --version failed: %v", path, err), Fix: fix}
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n") // QEMU adds its copyright
	return api.Check{ID: id, Status: api.CheckOK, Detail: strings.TrimSpace(first)}
}

func keysCheck(ctx context.Context, in Inputs) api.Check {
	if in.Store == nil {
		return api.Check{ID: "keys", Status: api.CheckFail, Detail: fmt.Sprint(in.StoreErr),
			Fix: "unlock the OS key store (Linux: a Secret Service such as gnome-keyring in your session)"}
	}
	names, err := in.Store.List(ctx)
	if err != nil {
		return api.Check{ID: "keys", Status: api.CheckFail, Detail: err.Error()}
	}
	if len(names) == 0 {
		return api.Check{ID: "keys", Status: api.CheckWarn, Detail: "no provider keys stored", Fix: "thesystem keys set anthropic"}
	}
	return api.Check{ID: "keys", Status: api.CheckOK, Detail: "keys for " + strings.Join(names, ", ")}
}

func portCheck(ctx context.Context, id, key string, port int, ours bool) api.Check {
	if ours {
		return api.Check{ID: id, Status: api.CheckOK, Detail: fmt.Sprintf("127.0.0.1:%d held by this engine", port)}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return api.Check{ID: id, Status: api.CheckFail, Detail: fmt.Sprintf("127.0.0.1:%d is in use by another program", port),
			Fix: fmt.Sprintf("stop what listens there (ss -ltnp 'sport = :%d') or change %s in thesystem.yaml", port, key)}
	}
	_ = ln.Close()
	return api.Check{ID: id, Status: api.CheckOK, Detail: fmt.Sprintf("127.0.0.1:%d is free", port)}
}

func proxyCheck(ctx context.Context, port int) api.Check {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://127.0.0.1:%d/agentauth/health", port)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err == nil {
		var resp *http.Response
		if resp, err = http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = errors.New(resp.Status)
			}
		}
	}
	if err != nil {
		return api.Check{ID: "proxy", Status: api.CheckFail, Detail: fmt.Sprintf("%s: %v", url, err), Fix: "thesystem restart agentauth-proxy"}
	}
	return api.Check{ID: "proxy", Status: api.CheckOK, Detail: url + " healthy"}
}

// chatCheck says who may join the chat: with server.allowlist off, any
// local process or agent can speak under any name.
func chatCheck(cfg config.Config) api.Check {
	switch {
	case cfg.Mode == config.ModeClient:
		return api.Check{ID: "chat.allowlist", Status: api.CheckOK, Detail: "mode client: the remote server " + cfg.Client.Remote + " admits whom its admin admits; " +
			"this stack's agents prove their lasting identities (the state dir's identities/) to it"}
	case cfg.Server.Chat == config.ChatUpstream:
		return api.Check{ID: "chat.allowlist", Status: api.CheckWarn, Detail: "server.chat upstream: the agentchat package's server admits any name",
			Fix: "set server.chat: embedded for a server that admits only the identities TheSystem issues"}
	case !cfg.Server.Allowlist:
		return api.Check{ID: "chat.allowlist", Status: api.CheckWarn, Detail: "server.allowlist is off: any local process or agent can join the chat under any name, agent-1 included",
			Fix: "remove server.allowlist: false from thesystem.yaml"}
	}
	return api.Check{ID: "chat.allowlist", Status: api.CheckOK, Detail: "the chat server admits only the identities TheSystem issued (one key per agent, the user's, the dashboard's)"}
}
