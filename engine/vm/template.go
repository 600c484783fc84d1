// Package vm is the VM tier: drivers behind one small interface (none:
// the host's podman; lima: a Lima VM as the firebreak), and the Lima
// template generated from thesystem.yaml with the lima/v2 library's types,
// validated with limayaml before use.
package vm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"github.com/lima-vm/lima/v2/pkg/limatype"
	"github.com/lima-vm/lima/v2/pkg/limayaml"

	"github.com/thesystem-dev/thesystem/engine/config"
)

// Paths inside the guest.
const (
	GuestPodmanSocket = "/run/podman/podman.sock"
	GuestSocketDir    = "/run/thesystem/sockets"
	GuestServiceDir   = "/run/thesystem/services"
	GuestProjectDir   = "/project"
	ProvisionedMarker = "/var/lib/thesystem/.provisioned"
)

// Image is a guest image for one architecture.
type Image struct {
	Location string
	Arch     limatype.Arch
	Digest   string
}

// DefaultImages are Ubuntu 24.04 cloud images.
func DefaultImages() []Image {
	return []Image{
		{Location: "https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-amd64.img", Arch: limatype.X8664},
		{Location: "https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-arm64.img", Arch: limatype.AARCH64},
	}
}

// TemplateOptions are what the template needs besides thesystem.yaml.
type TemplateOptions struct {
	// Images overrides DefaultImages (the real-VM test uses a local one).
	Images []Image
	// HostSocketDir is the host directory of the proxy socket, forwarded
	// into the guest (reverse) at GuestSocketDir.
	HostSocketDir string
	// HostPodmanSocket is where the guest's podman socket appears on the
	// host.
	HostPodmanSocket string
	// HostForwardDir is where the guest's chat and dashboard sockets
	// appear on the host (the host relays 127.0.0.1 ports to them).
	HostForwardDir string
	// Env is passed to the guest: already the allowlist minus secrets.
	Env []string
}

// Template builds the Lima instance's configuration from the config:
// cpus/memory/disk, the project mounted read-only, podman provisioned
// (and a marker when done), the guest's podman, chat and dashboard sockets
// forwarded to the host, the host's proxy socket into the guest (reverse),
// no guest TCP port forwarded at all, containerd off.
func Template(cfg config.Config, opt TemplateOptions) (*limatype.LimaYAML, error) {
	images := opt.Images
	if len(images) == 0 {
		images = DefaultImages()
	}
	y := &limatype.LimaYAML{}
	vmType := limatype.QEMU
	if runtime.GOOS == "darwin" {
		vmType = limatype.VZ
	}
	y.VMType = &vmType
	for _, im := range images {
		y.Images = append(y.Images, limatype.Image{File: limatype.File{Location: im.Location, Arch: im.Arch}})
	}
	cpus := cfg.VM.CPUs
	y.CPUs = &cpus
	mem, disk := cfg.VM.Memory, cfg.VM.Disk
	y.Memory, y.Disk = &mem, &disk
	mountPoint, writable := GuestProjectDir, false
	y.Mounts = []limatype.Mount{{Location: cfg.VM.Mount, MountPoint: &mountPoint, Writable: &writable}}
	mountType := limatype.REVSSHFS
	y.MountType = &mountType
	off := false
	y.Containerd = limatype.Containerd{System: &off, User: &off}
	script := provisionScript()
	y.Provision = []limatype.Provision{{Mode: limatype.ProvisionModeSystem, Script: &script}}
	probe := fmt.Sprintf("#!/bin/sh\nset -eu\ntest -f %s\ntest -S %s\n", ProvisionedMarker, GuestPodmanSocket)
	y.Probes = []limatype.Probe{{Mode: limatype.ProbeModeReadiness, Script: &probe, Hint: "podman is being provisioned in the VM"}}
	y.PortForwards = []limatype.PortForward{
		{GuestSocket: GuestPodmanSocket, HostSocket: opt.HostPodmanSocket},
		{GuestSocket: GuestSocketDir + "/agentauth.sock", HostSocket: filepath.Join(opt.HostSocketDir, "agentauth.sock"), Reverse: true},
		{GuestSocket: GuestServiceDir + "/chat.sock", HostSocket: filepath.Join(opt.HostForwardDir, "chat.sock")},
		{GuestSocket: GuestServiceDir + "/dashboard.sock", HostSocket: filepath.Join(opt.HostForwardDir, "dashboard.sock")},
		// No TCP port of the guest's reaches the host: the host relays
		// its own loopback ports to the forwarded sockets.
		{GuestPortRange: [2]int{1, 65535}, Ignore: true},
	}
	if len(opt.Env) > 0 {
		y.Env = map[string]string{}
		for _, kv := range opt.Env {
			for i := range len(kv) {
				if kv[i] == '=' {
					y.Env[kv[:i]] = kv[i+1:]
					break
				}
			}
		}
	}
	y.Message = "TheSystem's VM: podman for the agents, the chat server and the dashboard (http://127.0.0.1:" +
		strconv.Itoa(cfg.Server.Dashboard) + " on the host)."
	return y, nil
}

// provisionScript installs podman in the guest, serves its API socket,
// and leaves the marker the readiness probe waits for.
func provisionScript() string {
	return `#!/bin/sh
set -eux
if [ ! -f ` + ProvisionedMarker + ` ]; then
  export DEBIAN_FRONTEND=noninteractive
  command -v podman >/dev/null || { apt-get update -qq && apt-get install -y -qq podman; }
  systemctl enable --now podman.socket
  mkdir -p ` + GuestSocketDir + ` ` + GuestServiceDir + ` /var/lib/thesystem
  touch ` + ProvisionedMarker + `
fi
`
}

// Render marshals the template to YAML.
func Render(y *limatype.LimaYAML) ([]byte, error) {
	b, err := limayaml.Marshal(y, false)
	if err != nil {
		return nil, fmt.Errorf("lima template: %w", err)
	}
	return b, nil
}

// Validate loads the rendered template back the way limactl will (Load
// needs an absolute path; it fills the defaults) and validates it.
func Validate(ctx context.Context, b []byte, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	y, err := limayaml.Load(ctx, b, abs)
	if err != nil {
		return fmt.Errorf("lima template %s: %w", path, err)
	}
	if err := limayaml.Validate(y, false); err != nil {
		return fmt.Errorf("lima template %s: %w", path, err)
	}
	return nil
}

// WriteTemplate renders, validates and writes the template at path.
func WriteTemplate(ctx context.Context, y *limatype.LimaYAML, path string) error {
	b, err := Render(y)
	if err != nil {
		return err
	}
	if err := Validate(ctx, b, path); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
