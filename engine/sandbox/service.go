package sandbox

import (
	"archive/tar"
	"fmt"
	"io"
	"syscall"

	spec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/containers/podman/v5/pkg/specgen"
	"github.com/thesystem-dev/thesystem/engine/guest"
)

// ServiceSpec is a container of the stack's own (the chat server, the
// dashboard): our static binary as its only program, the services socket
// directory writable so it can listen there (the proxy's is not mounted at
// all), and otherwise the agents' hardening.
type ServiceSpec struct {
	Name       string // e.g. agentchat-server
	Stack      string
	Image      string
	InitBinary string
	ServiceDir string // host directory mounted read-write at /run/thesystem/services
	// OwnDir, when set, is a host directory of this service's alone,
	// mounted read-write at /run/thesystem/own, for a socket the agents
	// must not reach (the dashboard's); ServiceDir is then read-only.
	OwnDir string
	// IdentityDir, when set, is a host directory with this service's chat
	// key, mounted read-only at /run/thesystem/identity.
	IdentityDir string
	Args        []string // arguments to the binary
	User        string
	IDs         IDMap
}

// ContainerName is the service's container name.
func (s ServiceSpec) ContainerName() string { return "thesystem-" + s.Stack + "-" + s.Name }

// Generator is podman's spec for the service container.
func (s ServiceSpec) Generator() (*specgen.SpecGenerator, error) {
	a := AgentSpec{Agent: s.Name, Stack: s.Stack, Image: s.Image, InitBinary: s.InitBinary,
		Argv: []string{guest.InitPath}, User: s.User, IDs: s.IDs, Memory: 512 << 20, CPUs: 1, Pids: 256}
	g, err := a.Generator()
	if err != nil {
		return nil, err
	}
	g.Name = s.ContainerName()
	g.Entrypoint = append([]string{guest.InitPath}, s.Args...)
	g.Command = nil
	g.Volumes = nil
	g.WorkDir = "/"
	g.Env = map[string]string{"HOME": "/tmp"}
	term := syscall.SIGTERM
	g.StopSignal = &term
	var mounts []spec.Mount
	for _, m := range g.Mounts {
		if m.Destination == guest.AgentDir || m.Destination == guest.SocketDir {
			continue // no token, no proxy socket
		}
		mounts = append(mounts, m)
	}
	if s.IdentityDir != "" {
		mounts = append(mounts, spec.Mount{Destination: guest.IdentityDir, Type: "bind", Source: s.IdentityDir, Options: []string{"ro", "bind"}})
	}
	mode := "rw"
	if s.OwnDir != "" {
		mode = "ro"
		mounts = append(mounts, spec.Mount{Destination: guest.OwnDir, Type: "bind", Source: s.OwnDir, Options: []string{"rw", "bind"}})
	}
	g.Mounts = append(mounts, spec.Mount{Destination: guest.ServiceDir, Type: "bind", Source: s.ServiceDir, Options: []string{mode, "bind"}})
	return g, nil
}

// CreateService creates (not starts) a service container, replacing a
// leftover of the same name.
func (p *Podman) CreateService(s ServiceSpec) (string, error) {
	g, err := s.Generator()
	if err != nil {
		return "", err
	}
	_ = p.Remove(g.Name)
	return p.create(g)
}

// BaseRootfs writes the root filesystem of the stack's service containers:
// nothing but mount points, since the program is our static binary,
// mounted in.
func BaseRootfs(w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, d := range []string{"etc/", "run/", "run/thesystem/", "run/thesystem/sockets/", "run/thesystem/services/", "run/thesystem/own/", "run/thesystem/identity/", "run/thesystem/agent/", "workspace/", "project/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			return fmt.Errorf("base rootfs: %w", err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "thesystem", Mode: 0o755}); err != nil {
		return err
	}
	return tw.Close()
}
