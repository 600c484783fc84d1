package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/compat"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/guest"
	"github.com/thesystem-dev/thesystem/engine/relay"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
	"github.com/thesystem-dev/thesystem/engine/supervise"
	"github.com/thesystem-dev/thesystem/engine/webguard"
)

// The agents' user in every container.
const (
	agentUID = 1000
	agentGID = 1000
)

// ClaudeCodeVersion is the claude-code release the swarm installs.
const ClaudeCodeVersion = "2.1.330"

func (e *Engine) stackName() string {
	sum := sha256.Sum256([]byte(e.opt.Config.Dir))
	return hex.EncodeToString(sum[:3])
}

// agentSpec is one agent of the swarm: its name and the group it is in.
type agentSpec struct {
	Name  string
	Group config.BackendGroup
}

// agents expands the swarm's groups into agent-1…agent-N.
func (e *Engine) agents() []agentSpec {
	var out []agentSpec
	for _, g := range e.opt.Config.Config.Swarm.AgentGroups() {
		for range g.Count {
			out = append(out, agentSpec{Name: fmt.Sprintf("agent-%d", len(out)+1), Group: g})
		}
	}
	return out
}

// sandboxSpecs is the container tier: podman (the host's, a service the
// engine runs, or the VM's), the chat server and the dashboard in
// containers, and the agents, each in its own container.
func (e *Engine) sandboxSpecs(logs *supervise.Logs) []supervise.Spec {
	cfg := e.opt.Config.Config
	t := e.layout
	chatAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Server.Port))
	connect := func(ctx context.Context) (*sandbox.Podman, error) {
		return sandbox.Connect(ctx, t.PodmanSocket)
	}

	specs := []supervise.Spec{e.tier.Spec(), {
		Name: api.ComponentChat, DependsOn: []string{api.ComponentVM},
		Service: supervise.ServiceFunc(func(ctx context.Context) error {
			p, err := connect(ctx)
			if err != nil {
				return err
			}
			if err := e.prepareServices(ctx, p); err != nil {
				return err
			}
			allow, err := e.issueIdentities()
			if err != nil {
				return err
			}
			// The user's ear in the chat, for as long as this run lasts.
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go e.watchChat(wctx, logs, cfg.Channels)
			if cfg.Server.Chat == config.ChatUpstream {
				return e.runUpstreamChat(ctx, chatAddr, logs)
			}
			args := []string{"chat", "serve", "--socket", guest.ServiceDir + "/" + guest.ChatSocket, "--channels", strings.Join(cfg.Channels, ","),
				// The host's relay, the agents' in-container one; the dashboard's page.
				"--allow-port", strconv.Itoa(cfg.Server.Port), "--allow-port", strconv.Itoa(guest.ChatPort),
				"--allow-origin", strings.Join(webguard.LocalOrigins(cfg.Server.Dashboard), ",")}
			return e.runService(ctx, p, logs, api.ComponentChat, chatAddr, t.ChatSocket, "", "", "server.port", append(args, allow...)...)
		}),
		Ready: supervise.HTTPProbe{URL: "http://" + chatAddr + "/health", Timeout: t.ProbeTimeout}, ReadyTimeout: t.StartTimeout,
		Live: supervise.HTTPProbe{URL: "http://" + chatAddr + "/health", Timeout: t.ProbeTimeout}, LiveInterval: 10 * time.Second,
		Ports: []int{cfg.Server.Port},
	}}

	dashAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Server.Dashboard))
	dashHealth := supervise.ProbeFunc(func(ctx context.Context) error {
		var h struct {
			Connected bool `json:"connected"`
		}
		if err := getJSON(ctx, "http://"+dashAddr+"/api/health", t.ProbeTimeout, &h); err != nil {
			return err
		}
		if !h.Connected {
			return errors.New("not connected to the chat server")
		}
		return nil
	})
	specs = append(specs, supervise.Spec{
		Name: api.ComponentDashboard, DependsOn: []string{api.ComponentChat},
		Service: supervise.ServiceFunc(func(ctx context.Context) error {
			p, err := connect(ctx)
			if err != nil {
				return err
			}
			args := []string{"dashboard", "serve", "--chat-url", "ws://localhost", "--chat-socket", guest.ServiceDir + "/" + guest.ChatSocket,
				"--socket", guest.OwnDir + "/dashboard.sock", "--allow-port", strconv.Itoa(cfg.Server.Dashboard)}
			identityDir := ""
			if e.chatAdmin.Load() != nil {
				identityDir = e.layout.AgentsDir + "/" + filepath.Base(e.opt.Paths.DashboardIdentityDir())
				args = append(args, "--identity", guest.IdentityDir+"/"+guest.IdentityFile)
			}
			return e.runService(ctx, p, logs, api.ComponentDashboard, dashAddr, t.DashboardSocket, t.DashboardDir, identityDir, "server.dashboard", args...)
		}),
		Ready: dashHealth, ReadyTimeout: t.StartTimeout,
		Live: dashHealth, LiveInterval: 10 * time.Second,
		Ports: []int{cfg.Server.Dashboard},
	})

	specs = append(specs, supervise.Spec{
		Name: api.ComponentSwarm, DependsOn: []string{api.ComponentDashboard},
		Service: supervise.ServiceFunc(func(ctx context.Context) error {
			// The image is ready only while this run of the swarm says so.
			e.agentImageRef.Store(nil)
			defer e.agentImageRef.Store(nil)
			p, err := connect(ctx)
			if err != nil {
				return err
			}
			ref, err := e.ensureAgentImage(ctx, p, logs)
			if err != nil {
				return err
			}
			e.agentImageRef.Store(&ref)
			<-ctx.Done()
			return nil
		}),
		Ready: supervise.ProbeFunc(func(context.Context) error {
			if e.agentImageRef.Load() == nil {
				return errors.New("building the agent image")
			}
			return nil
		}),
		ReadyTimeout: 15 * time.Minute,
	})
	for _, a := range e.agents() {
		name, backend := a.Name, a.Group.Backend
		var current atomic.Pointer[string]
		specs = append(specs, supervise.Spec{
			Name: name, DependsOn: []string{api.ComponentSwarm},
			Service: supervise.ServiceFunc(func(ctx context.Context) error {
				return e.runAgent(ctx, connect, name, backend, &current, logs)
			}),
			Ready: supervise.ProbeFunc(func(ctx context.Context) error {
				id := current.Load()
				if id == nil {
					return errors.New("not created")
				}
				p, err := connect(ctx)
				if err != nil {
					return err
				}
				ok, err := p.Running(*id)
				switch {
				case err != nil:
					return fmt.Errorf("container: %w", err)
				case !ok:
					return errors.New("container not running")
				}
				return nil
			}),
			ReadyTimeout: t.StartTimeout,
		})
	}
	return specs
}

// prepareServices makes the services socket dir (written by the chat and
// dashboard containers), sweeps what an earlier daemon left running
// (everything of the stack depends on the chat server, so its start is the
// one place to do it), and imports the services' base image.
func (e *Engine) prepareServices(ctx context.Context, p *sandbox.Podman) error {
	if err := e.tier.Prepare(); err != nil {
		return err
	}
	if ids, err := p.ListManaged(e.stackName()); err == nil && len(ids) > 0 {
		supervise.Report(ctx, "removing %d containers left by an earlier run", len(ids))
		for _, id := range ids {
			_ = p.Remove(id)
		}
	}
	// The chat server's and the dashboard's containers run from it.
	supervise.Report(ctx, "preparing the base image")
	return p.ImportImageFrom(e.baseImage(), sandbox.BaseRootfs)
}

// runUpstreamChat runs the agentchat npm package's server on the host
// (server.chat: upstream), after checking its version against the
// compatibility matrix; the agents and the dashboard reach it through the
// chat socket, relayed to its TCP port.
func (e *Engine) runUpstreamChat(ctx context.Context, addr string, logs *supervise.Logs) error {
	bin, err := exec.LookPath("agentchat")
	if err != nil {
		return supervise.Permanent(errors.New("server.chat: upstream needs the agentchat command on PATH " +
			"(npm install -g @tjamescouch/agentchat); it is not there — or set server.chat: embedded"))
	}
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return supervise.Permanent(fmt.Errorf("agentchat --version: %w", err))
	}
	version := strings.TrimSpace(string(out))
	r, err := compat.Default(e.opt.Version).Check("agentchat", version)
	if err != nil {
		return err
	}
	if !r.OK {
		return supervise.Permanent(fmt.Errorf("agentchat %s: %s; %s", version, r.Problem, r.Suggestion))
	}
	supervise.Report(ctx, "upstream agentchat %s", version)
	host, port, _ := net.SplitHostPort(addr)
	_ = os.Remove(e.opt.Paths.ChatSocket()) // the embedded server's, from an earlier run
	relay, err := relay.ForwardToTCP(ctx, e.opt.Paths.ChatSocket(), addr)
	if err != nil {
		return err
	}
	defer func() { _ = relay.Close() }()
	proc := &supervise.ProcService{Name: api.ComponentChat, Argv: []string{bin, "serve", "--port", port, "--host", host}, Logs: logs}
	return proc.Serve(ctx)
}

// getJSON decodes a GET's JSON answer.
func getJSON(ctx context.Context, url string, timeout time.Duration, v any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (e *Engine) baseImage() string { return "localhost/thesystem-base:3" }

// ensureAgentImage builds the agent image unless it exists: from
// swarm.containerfile when set, else from claude-code's own files.
func (e *Engine) ensureAgentImage(ctx context.Context, p *sandbox.Podman, logs *supervise.Logs) (string, error) {
	if cf := e.opt.Config.Config.Swarm.Containerfile; cf != "" {
		ref, err := contentRef("localhost/thesystem-agent-custom", cf)
		if err != nil {
			return "", supervise.Permanent(err)
		}
		if ok, err := p.ImageExists(ref); err != nil || ok {
			return ref, err
		}
		supervise.Report(ctx, "building the agent image from %s", cf)
		w := logs.Writer(api.ComponentSwarm, "build")
		defer func() { _ = w.Close() }()
		return ref, p.BuildImage(cf, ref, w)
	}
	bin, err := e.runtimeBinary(ctx, logs)
	if err != nil {
		return "", supervise.Permanent(err)
	}
	ref, err := contentRef("localhost/thesystem-agent-claude", bin)
	if err != nil {
		return "", err
	}
	supervise.Report(ctx, "preparing the agent image %s", ref)
	return ref, p.ImportImageFrom(ref, func(w io.Writer) error {
		return sandbox.RuntimeRootfs(ctx, bin, "claude", agentUID, agentGID, w)
	})
}

// contentRef names an image after a file's content (the runtime binary,
// the Containerfile), so a change gets a new image and no change reuses it.
func contentRef(repo, file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("agent image: %w", err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return repo + ":" + hex.EncodeToString(h.Sum(nil))[:12], nil
}

// claudeBinary is where npm puts claude-code's native binary under dir.
func claudeBinary(dir string) string {
	arch := map[string]string{"amd64": "x64", "arm64": "arm64"}[runtime.GOARCH]
	return filepath.Join(dir, "node_modules", "@anthropic-ai", "claude-code-linux-"+arch, "claude")
}

// InstalledRuntime is the agent runtime's binary if it is there already:
// override, or claude-code installed in the state dir; "" otherwise.
func InstalledRuntime(paths config.Paths, override string) string {
	if override != "" {
		return override
	}
	if bin := claudeBinary(paths.RuntimesDir()); fileExists(bin) {
		return bin
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// runtimeBinary finds claude-code, installing it from npm into the state
// dir when it is not there yet.
func (e *Engine) runtimeBinary(ctx context.Context, logs *supervise.Logs) (string, error) {
	if bin := InstalledRuntime(e.opt.Paths, e.opt.RuntimeBinary); bin != "" {
		return bin, nil
	}
	dir := e.opt.Paths.RuntimesDir()
	bin := claudeBinary(dir)
	note := func(s string) {
		logs.Append(supervise.Line{Component: api.ComponentSwarm, Stream: "supervisor", Text: s})
	}
	note("installing @anthropic-ai/claude-code@" + ClaudeCodeVersion + " from npm into " + dir)
	cmd := exec.CommandContext(ctx, "npm", "install", "--prefix", dir, "--no-audit", "--no-fund", "--ignore-scripts",
		"--loglevel=error", "@anthropic-ai/claude-code@"+ClaudeCodeVersion)
	w := logs.Writer(api.ComponentSwarm, "npm")
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	_ = w.Close()
	if err != nil {
		return "", fmt.Errorf("install claude-code with npm: %w", err)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("claude-code installed but %s is missing", bin)
	}
	return bin, nil
}

// runAgent is one agent's container: a fresh token, the container created
// and started, and waited on; stopping revokes the token and removes the
// container (the workspace volume stays).
func (e *Engine) runAgent(ctx context.Context, connect func(context.Context) (*sandbox.Podman, error), name, backend string, current *atomic.Pointer[string], logs *supervise.Logs) error {
	if backend != config.BackendClaude {
		return supervise.Permanent(fmt.Errorf("backend %s: its runtime (@tjamescouch/gro) cannot be installed from this machine's registries; use backend claude", backend))
	}
	p, err := connect(ctx)
	if err != nil {
		return err
	}
	ref := e.agentImageRef.Load()
	if ref == nil {
		return errors.New("no agent image yet")
	}
	tok, err := e.proxy.Tokens().Issue(name)
	if err != nil {
		return err
	}
	defer e.proxy.Revoke(name)
	key, err := e.admitAgent(ctx, name)
	if err != nil {
		return err
	}
	defer func() {
		if err := e.revokeAgent(name); err != nil {
			logs.Append(supervise.Line{Component: name, Stream: "supervisor", Text: err.Error()})
		}
	}()
	tokDir, err := e.writeAgentToken(name, tok, key)
	if err != nil {
		return err
	}
	cfg := e.opt.Config.Config
	env, dropped := sandbox.ForwardEnv(os.Environ())
	for _, d := range dropped {
		logs.Append(supervise.Line{Component: name, Stream: "supervisor", Text: fmt.Sprintf("not forwarded: %s (%s)", d.Name, d.Reason)})
	}
	env = append(env, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1")
	argv := []string{guest.InitPath, "sandbox-agent", "--name", name, "--channels", strings.Join(cfg.Channels, ",")}
	if key != nil {
		argv = append(argv, "--identity", guest.AgentDir+"/"+guest.IdentityFile)
	}
	mission := cfg.Swarm.Mission
	if cfg.Swarm.MissionFile != "" {
		b, err := os.ReadFile(cfg.Swarm.MissionFile)
		if err != nil {
			return supervise.Permanent(fmt.Errorf("swarm.mission_file: %w", err))
		}
		mission = string(b)
	}
	if mission != "" {
		argv = append(argv, "--mission", mission)
	}
	argv = append(argv, "--", "claude", "-p")
	id, err := p.CreateAgent(sandbox.AgentSpec{
		Agent: name, Stack: e.stackName(), Image: *ref, InitBinary: e.layout.InitBinary,
		SocketDir: e.layout.ProxyDir, ServiceDir: e.layout.ServiceDir, AgentDir: tokDir, ProjectDir: e.layout.ProjectDir,
		Workspace: "thesystem-" + e.stackName() + "-" + name, Argv: argv, Env: env,
		User: fmt.Sprintf("%d:%d", agentUID, agentGID), IDs: e.layout.IDs,
	})
	if err != nil {
		return err
	}
	current.Store(&id)
	return e.runContainer(ctx, p, id, logs, name)
}

// runService runs one of the stack's own containers (our binary with
// args), its socket relayed to addr on the host's loopback; setting names
// the thesystem.yaml key to change when addr is taken.
func (e *Engine) runService(ctx context.Context, p *sandbox.Podman, logs *supervise.Logs, name, addr, socket, ownDir, identityDir, setting string, args ...string) error {
	id, err := p.CreateService(sandbox.ServiceSpec{
		Name: name, Stack: e.stackName(), Image: e.baseImage(), InitBinary: e.layout.InitBinary,
		ServiceDir: e.layout.ServiceDir, OwnDir: ownDir, IdentityDir: identityDir, User: fmt.Sprintf("%d:%d", agentUID, agentGID), IDs: e.layout.IDs, Args: args,
	})
	if err != nil {
		return err
	}
	relay, err := relay.Forward(ctx, addr, socket)
	if err != nil {
		_ = p.Remove(id)
		return fmt.Errorf("%s port: %w (set %s in thesystem.yaml)", name, err, setting)
	}
	defer func() { _ = relay.Close() }()
	return e.runContainer(ctx, p, id, logs, name)
}

// runContainer runs a created container as the component name: its
// output and the runner's notes in the component's log.
func (e *Engine) runContainer(ctx context.Context, p *sandbox.Podman, id string, logs *supervise.Logs, name string) error {
	return sandbox.RunContainer(ctx, p, id, sandbox.RunOptions{
		Note:        func(s string) { logs.Append(supervise.Line{Component: name, Stream: "supervisor", Text: s}) },
		Output:      func() io.WriteCloser { return logs.Writer(name, "container") },
		StopTimeout: supervise.DefaultStopTimeout,
	})
}
