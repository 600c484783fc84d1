package vm

import (
	"context"
	"fmt"
	"time"

	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
	"github.com/thesystem-dev/thesystem/engine/supervise"
)

// Layout is where a tier keeps what the containers use: paths as podman
// sees them (the guest's, with a VM), the host's ends of the services'
// sockets, and how long things may take there.
type Layout struct {
	// PodmanSocket is the host path of the podman API.
	PodmanSocket string
	// As podman sees them: the proxy socket's dir (mounted into the
	// agents), the chat socket's dir (agents too), the dashboard's socket
	// dir (its container only), the agents' token dirs, the project, the
	// containers' init.
	ProxyDir, ServiceDir, DashboardDir, AgentsDir, ProjectDir, InitBinary string
	// ChatSocket and DashboardSocket are the services' sockets on the host,
	// which the loopback relays dial.
	ChatSocket, DashboardSocket string
	// ProbeTimeout bounds one health check of a service in the tier;
	// StartTimeout a container's start until it is ready.
	ProbeTimeout, StartTimeout time.Duration
	// IDs maps the containers' ids to host ids no account has (rootful
	// podman on the host); zero in a VM, whose guest has no other users.
	IDs sandbox.IDMap
	// OwnerUID and OwnerGID own what the host hands to the containers
	// (token dirs, keys, socket dirs); -1 keeps this process's.
	OwnerUID, OwnerGID int
	// ProjectShared: ProjectDir is a mount that holds the project at
	// "project" (the VM's GuestProjectShare), bound into the containers
	// with slave propagation, so a project mount made again while they
	// run reaches them.
	ProjectShared bool
	// Files, when set, writes the agents' token dirs where podman sees
	// them (the VM: over Lima's SSH, onto the guest's tmpfs); nil: the
	// host's dirs are podman's.
	Files FileWriter
}

// FileWriter puts small secret files (an agent run's token, its chat key)
// into a dir of the tier's: mode 0400, in a 0700 dir, the agents' uid's.
type FileWriter interface {
	// WriteFiles writes files into dir, each replaced whole; with only,
	// the other dirs beside dir (an agent's earlier runs) go first.
	WriteFiles(ctx context.Context, dir string, files map[string][]byte, only bool) error
}

// Driver is a container tier: where podman runs and everything the
// engine needs of it, so that the engine never asks which one it has.
type Driver interface {
	Name() string
	Layout() Layout
	// Spec is the tier as the stack's first component: the host's podman
	// service, or the VM (created, started, made ready, kept healthy and
	// stopped with the stack).
	Spec() supervise.Spec
	// Prepare makes the host's dirs that the containers' services write
	// (before the first container starts).
	Prepare() error
	// Status is the VM's state (none: always running).
	Status(ctx context.Context) (Status, error)
	// Heal finds the host↔guest links that died (the host slept) and sets
	// them up again; it returns what it repaired.
	Heal(ctx context.Context) ([]string, error)
	// Destroy deletes what the tier built for the stack (its containers,
	// volumes and images; or the VM) and what the host kept for it.
	Destroy(ctx context.Context) error
}

// Options are what a driver needs of the engine.
type Options struct {
	Config config.Config
	Paths  config.Paths
	// Stack is the stack's name: the VM is thesystem-<stack>, the
	// containers are labelled with it.
	Stack string
	// Component is the tier's name in the stack (its logs, its status).
	Component string
	// InitBinary is a static linux build of thesystem, the containers' init.
	InitBinary string
	// Logs receive the tier's own lines.
	Logs *supervise.Logs

	// PodmanArgs and PodmanConf are the host's podman service's global
	// flags and containers.conf (vm.driver none).
	PodmanArgs []string
	PodmanConf string
	// Root: podman on the host runs as root (vm.driver none), so the
	// containers get a user namespace with ids no account has.
	Root bool

	// Limactl is the limactl binary ("" finds it); Images override the
	// VM's default images; StartTimeout bounds the VM's create and start
	// (vm.driver lima).
	Limactl      string
	Images       []Image
	StartTimeout time.Duration
}

// New is the driver for vm.driver.
func New(opt Options) (Driver, error) {
	if opt.Config.VM.Driver == config.DriverLima {
		return newLimaTier(opt), nil
	}
	return newNone(opt)
}

// note appends a line of the tier's own to its log.
func note(opt Options, format string, a ...any) {
	if opt.Logs != nil {
		opt.Logs.Append(supervise.Line{Component: opt.Component, Stream: "supervisor", Text: fmt.Sprintf(format, a...)})
	}
}
