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
	"strings"

	"github.com/lima-vm/lima/v2/pkg/limatype"
	"github.com/lima-vm/lima/v2/pkg/limayaml"
	"github.com/opencontainers/go-digest"

	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
)

// Paths inside the guest.
const (
	GuestPodmanSocket = "/run/podman/podman.sock"
	GuestSocketDir    = "/run/thesystem/sockets"
	GuestServiceDir   = "/run/thesystem/services"
	// GuestDashboardDir holds the dashboard's socket, out of the agents'
	// sight (they see GuestServiceDir).
	GuestDashboardDir = "/run/thesystem/dashboard"
	// GuestProjectShare is a mount of its own in the guest (a small
	// tmpfs, shared) that holds the project's mount at project/: the
	// containers bind it with slave propagation, so a project mount made
	// again (after the host slept) reaches the containers that run.
	GuestProjectShare = "/mnt/thesystem/project-share"
	GuestProjectDir   = GuestProjectShare + "/project"
	// GuestAgentsDir holds the agents' token dirs, written over Lima's
	// SSH onto the guest's tmpfs (never the host's disk through a mount).
	GuestAgentsDir    = "/run/thesystem/agents"
	ProvisionedMarker = "/var/lib/thesystem/.provisioned"
	// GuestInitBinary is the containers' init (a linux build of
	// thesystem) on the guest's own disk, where Lima.Stage puts it.
	GuestInitBinary = "/var/lib/thesystem/bin/thesystem"
)

// GuestUID is the uid of Lima's user in the guest: the agents' uid, so the
// sockets sshd makes for forwards (mode 0600, that user's) are theirs.
const GuestUID = 1000

// Image is a guest image for one architecture; Kernel and Initrd (with
// Cmdline) boot a kernel directly, for a bare root filesystem image.
type Image struct {
	Location string
	Arch     limatype.Arch
	Digest   string
	Kernel   string
	Initrd   string
	Cmdline  string
}

// DefaultImages are Ubuntu 24.04 cloud images.
func DefaultImages() []Image {
	return []Image{
		{Location: "https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-amd64.img", Arch: limatype.X8664},
		{Location: "https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-arm64.img", Arch: limatype.AARCH64},
	}
}

// Forward is a unix socket forwarded between host and guest over SSH:
// guest to host, or host to guest when Reverse.
type Forward struct {
	Host, Guest string
	Reverse     bool
}

func (f Forward) String() string {
	if f.Reverse {
		return f.Host + " (host) → " + f.Guest + " (guest)"
	}
	return f.Guest + " (guest) → " + f.Host + " (host)"
}

// SocketForwards are the stack's forwards: the guest's podman socket to
// the host, the host's proxy socket into the guest, and the chat server's
// and dashboard's sockets to forwardDir on the host (the host relays its
// loopback ports to them). With a remote chat server (client), the chat
// socket is the host's bridge to it, forwarded into the guest instead.
func SocketForwards(proxySocket, podmanSocket, forwardDir string, client bool) []Forward {
	return []Forward{
		{Guest: GuestPodmanSocket, Host: podmanSocket},
		{Guest: GuestSocketDir + "/agentauth.sock", Host: proxySocket, Reverse: true},
		{Guest: GuestServiceDir + "/chat.sock", Host: filepath.Join(forwardDir, "chat.sock"), Reverse: client},
		{Guest: GuestDashboardDir + "/dashboard.sock", Host: filepath.Join(forwardDir, "dashboard.sock")},
	}
}

// TemplateOptions are what the template needs besides thesystem.yaml.
type TemplateOptions struct {
	// Images overrides DefaultImages (the real-VM test uses a local one).
	Images []Image
	// Forwards are the unix sockets forwarded (SocketForwards).
	Forwards []Forward
	// Env is passed to the guest: already the allowlist minus secrets.
	Env []string
}

// Template builds the Lima instance's configuration from the config:
// cpus/memory/disk, no mount (see Lima.linkProject), podman
// provisioned (and a marker when done), the sockets forwarded, no guest
// TCP port forwarded at all, containerd off, the guest user uid GuestUID.
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
		li := limatype.Image{File: limatype.File{Location: im.Location, Arch: im.Arch, Digest: digest.Digest(im.Digest)}}
		if im.Kernel != "" {
			// A direct kernel boot needs no UEFI firmware.
			legacy := true
			y.Firmware.LegacyBIOS = &legacy
			li.Kernel = &limatype.Kernel{File: limatype.File{Location: im.Kernel, Arch: im.Arch}, Cmdline: im.Cmdline}
		}
		if im.Initrd != "" {
			li.Initrd = &limatype.File{Location: im.Initrd, Arch: im.Arch}
		}
		y.Images = append(y.Images, li)
	}
	cpus := cfg.VM.CPUs
	y.CPUs = &cpus
	mem, disk := cfg.VM.Memory, cfg.VM.Disk
	y.Memory, y.Disk = &mem, &disk
	uid := uint32(GuestUID)
	y.User = limatype.User{UID: &uid}
	// No mount of Lima's: the project reaches the guest over a link of
	// the engine's own (Lima.linkProject), which it makes again when it
	// dies; tokens and the init go over SSH.
	off := false
	y.Containerd = limatype.Containerd{System: &off, User: &off}
	// Lima copies the host's http(s)_proxy into the guest by default,
	// credentials in the URL included: nothing of the host's environment
	// goes in but the filtered Env.
	y.PropagateProxyEnv = &off
	script := provisionScript()
	y.Provision = []limatype.Provision{{Mode: limatype.ProvisionModeSystem, Script: &script}}
	probe := fmt.Sprintf("#!/bin/sh\nset -eu\ntest -f %s\ntest -S %s\n", ProvisionedMarker, GuestPodmanSocket)
	y.Probes = []limatype.Probe{{Mode: limatype.ProbeModeReadiness, Script: &probe, Hint: "podman is being provisioned in the VM"}}
	for _, f := range opt.Forwards {
		y.PortForwards = append(y.PortForwards, limatype.PortForward{GuestSocket: f.Guest, HostSocket: f.Host, Reverse: f.Reverse})
	}
	// No TCP port of the guest's reaches the host: the host relays its
	// own loopback ports to the forwarded sockets.
	y.PortForwards = append(y.PortForwards, limatype.PortForward{GuestPortRange: [2]int{1, 65535}, Ignore: true})
	if len(opt.Env) > 0 {
		y.Env = map[string]string{}
		for _, kv := range opt.Env {
			if k, v, ok := strings.Cut(kv, "="); ok {
				y.Env[k] = v
			}
		}
	}
	y.Message = "TheSystem's VM: podman for the agents, the chat server and the dashboard (http://127.0.0.1:" +
		strconv.Itoa(cfg.Server.Dashboard) + " on the host)."
	return y, nil
}

// provisionScript runs as root at every boot (Lima fills in {{.User}} and
// {{.UID}}, its user in the guest): podman and the agents' userland (the
// packages their image is made of, see sandbox.GuestImage) installed once,
// its API socket served to Lima's user (the forward to the host connects
// as that user), the socket dirs made for that user, sshd told to replace
// a stale forwarded socket, and the marker the readiness probe waits for.
func provisionScript() string {
	return `#!/bin/sh
set -eux
export DEBIAN_FRONTEND=noninteractive
command -v podman >/dev/null || { apt-get update -qq && apt-get install -y -qq podman; }
command -v sshfs >/dev/null || { apt-get update -qq && apt-get install -y -qq sshfs; }
missing=""
for p in ` + strings.Join(append(sandbox.GuestBasePackages(), sandbox.DevPackages()...), " ") + `; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] || { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; }
mkdir -p /etc/systemd/system/podman.socket.d
printf '[Socket]\nSocketUser={{.User}}\nSocketMode=0600\n' >/etc/systemd/system/podman.socket.d/thesystem.conf
systemctl daemon-reload
systemctl enable podman.socket
systemctl restart podman.socket
chmod 0711 /run/podman
mkdir -p ` + GuestSocketDir + ` ` + GuestServiceDir + ` ` + GuestDashboardDir + ` /var/lib/thesystem
chown {{.UID}} ` + GuestSocketDir + ` ` + GuestServiceDir + ` ` + GuestDashboardDir + `
chmod 0755 ` + GuestSocketDir + ` ` + GuestServiceDir + ` ` + GuestDashboardDir + `
if [ -d /etc/ssh/sshd_config.d ] && [ ! -f /etc/ssh/sshd_config.d/thesystem.conf ]; then
  echo 'StreamLocalBindUnlink yes' >/etc/ssh/sshd_config.d/thesystem.conf
  systemctl reload ssh 2>/dev/null || systemctl reload sshd 2>/dev/null || true
fi
touch ` + ProvisionedMarker + `
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
