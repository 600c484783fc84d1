package sandbox

import (
	"fmt"
	"path/filepath"
	"sort"
	"syscall"

	spec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/containers/podman/v5/pkg/specgen"
	"github.com/thesystem-dev/thesystem/engine/guest"
)

// Labels that mark a container or volume as TheSystem's.
const (
	LabelManaged = "dev.thesystem.managed"
	LabelAgent   = "dev.thesystem.agent"
	LabelStack   = "dev.thesystem.stack"
)

// AgentSpec is one agent's container.
type AgentSpec struct {
	Agent string // the agent's name
	Stack string // the stack it belongs to (labels; cleanup)
	Image string
	// InitBinary is the host path of the static thesystem binary, mounted
	// read-only as the container's PID 1.
	InitBinary string
	// SocketDir is the host directory with the proxy's socket, mounted
	// read-only at /run/thesystem/sockets.
	SocketDir string
	// ServiceDir is the host directory with the chat server's socket,
	// mounted read-only at /run/thesystem/services; "" expects chat.sock in
	// SocketDir.
	ServiceDir string
	// AgentDir is the host directory with this agent's token, mounted
	// read-only at /run/thesystem/agent.
	AgentDir string
	// ProjectDir is mounted read-only at /project; "" for none. With
	// ProjectShared it is a mount holding the project at "project", bound
	// at guest.ProjectShareDir with slave propagation (see ProjectPath).
	ProjectDir    string
	ProjectShared bool
	// Workspace is the named volume mounted at /workspace; it survives
	// stop.
	Workspace string
	// Argv is the agent runtime.
	Argv []string
	// Env is the container's environment (already allowlisted).
	Env  []string
	User string // uid:gid, never root
	// IDs maps the container's ids to unused ones of the host's.
	IDs    IDMap
	Memory int64 // bytes
	CPUs   float64
	Pids   int64
}

// ProjectPath is where the container sees the project.
func ProjectPath(shared bool) string {
	if shared {
		return guest.SharedProjectPath
	}
	return guest.ProjectPath
}

// ContainerName is the agent's container name.
func (a AgentSpec) ContainerName() string { return "thesystem-" + a.Stack + "-" + a.Agent }

// Generator turns the spec into podman's container spec: no network, a
// read-only root with a tmpfs /tmp, every capability dropped,
// no-new-privileges, pids/memory/cpu limits and ulimits, a non-root user,
// our labels, and the init as PID 1.
func (a AgentSpec) Generator() (*specgen.SpecGenerator, error) {
	if a.User == "" || a.User == "0" || a.User == "root" || a.User[0] == '0' && (len(a.User) == 1 || a.User[1] == ':') {
		return nil, fmt.Errorf("agent %s: containers never run as root, got user %q", a.Agent, a.User)
	}
	if len(a.Argv) == 0 {
		return nil, fmt.Errorf("agent %s: no runtime command", a.Agent)
	}
	g := specgen.NewSpecGenerator(a.Image, false)
	g.Name = a.ContainerName()
	g.Labels = map[string]string{LabelManaged: "true", LabelAgent: a.Agent, LabelStack: a.Stack}
	chatSock := guest.SocketDir + "/" + guest.ChatSocket
	if a.ServiceDir != "" {
		chatSock = guest.ServiceDir + "/" + guest.ChatSocket
	}
	g.Entrypoint = []string{guest.InitPath, "sandbox-init", "--socket-dir", guest.SocketDir, "--chat-socket", chatSock,
		"--token-file", guest.AgentDir + "/" + guest.TokenFile, "--"}
	g.Command = a.Argv
	g.Env = map[string]string{}
	for _, kv := range a.Env {
		for i := range len(kv) {
			if kv[i] == '=' {
				g.Env[kv[:i]] = kv[i+1:]
				break
			}
		}
	}
	g.Env["HOME"] = guest.WorkspaceDir
	g.WorkDir = guest.WorkspaceDir
	g.User = a.User
	a.IDs.apply(g)
	g.NetNS = specgen.Namespace{NSMode: specgen.NoNetwork}
	ro, no, rwTmpfs := true, true, false
	g.ReadOnlyFilesystem = &ro
	g.ReadWriteTmpfs = &rwTmpfs // only our /tmp, with our options
	g.NoNewPrivileges = &no
	g.CapDrop = []string{"ALL"}
	term := syscall.SIGTERM
	g.StopSignal = &term
	timeout := uint(5)
	g.StopTimeout = &timeout
	g.Mounts = []spec.Mount{
		// podman gives the tmpfs the mode of the image's /tmp (1777 in
		// every distribution's root filesystem).
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"rw", "nosuid", "nodev", "mode=1777", "size=256m"}},
		{Destination: guest.InitPath, Type: "bind", Source: a.InitBinary, Options: []string{"ro", "bind"}},
		{Destination: guest.SocketDir, Type: "bind", Source: a.SocketDir, Options: []string{"ro", "bind"}},
		{Destination: guest.AgentDir, Type: "bind", Source: a.AgentDir, Options: []string{"ro", "bind"}},
	}
	if a.ServiceDir != "" {
		g.Mounts = append(g.Mounts, spec.Mount{Destination: guest.ServiceDir, Type: "bind", Source: a.ServiceDir, Options: []string{"ro", "bind"}})
	}
	switch {
	case a.ProjectDir != "" && a.ProjectShared:
		g.Mounts = append(g.Mounts, spec.Mount{Destination: guest.ProjectShareDir, Type: "bind", Source: filepath.Clean(a.ProjectDir), Options: []string{"ro", "rbind", "rslave"}})
	case a.ProjectDir != "":
		g.Mounts = append(g.Mounts, spec.Mount{Destination: guest.ProjectPath, Type: "bind", Source: filepath.Clean(a.ProjectDir), Options: []string{"ro", "bind"}})
	}
	g.Volumes = []*specgen.NamedVolume{{Name: a.Workspace, Dest: guest.WorkspaceDir}}
	pids := a.Pids
	if pids <= 0 {
		pids = 512
	}
	mem := a.Memory
	if mem <= 0 {
		mem = 2 << 30
	}
	cpus := a.CPUs
	if cpus <= 0 {
		cpus = 1
	}
	period := uint64(100000)
	quota := int64(cpus * float64(period))
	g.ResourceLimits = &spec.LinuxResources{
		Pids:   &spec.LinuxPids{Limit: pids},
		Memory: &spec.LinuxMemory{Limit: &mem},
		CPU:    &spec.LinuxCPU{Period: &period, Quota: &quota},
	}
	g.Rlimits = []spec.POSIXRlimit{{Type: "nofile", Hard: 1024, Soft: 1024}, {Type: "nproc", Hard: 1024, Soft: 1024}}
	sort.Slice(g.Mounts, func(i, j int) bool { return g.Mounts[i].Destination < g.Mounts[j].Destination })
	return g, nil
}
