package component

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/atomicfile"
	"github.com/thesystem-dev/thesystem/engine/chat"
	"github.com/thesystem-dev/thesystem/engine/compat"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/dashboard"
	"github.com/thesystem-dev/thesystem/engine/guest"
	"github.com/thesystem-dev/thesystem/engine/listeners"
	"github.com/thesystem-dev/thesystem/engine/relay"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
	"github.com/thesystem-dev/thesystem/engine/supervise"
	"github.com/thesystem-dev/thesystem/engine/webguard"
)

// Chat is the chat server: the embedded one in a container of the stack,
// or the agentchat npm package's on the host (server.chat: upstream);
// while it runs, the user's connection to it (User) too.
type Chat struct {
	Env
	// Prepare is the tier's (vm.Driver.Prepare).
	Prepare    func() error
	Identities *Identities
	User       *UserChat

	bridge  *chat.Bridge // mode client: the relay to the remote server
	serving atomic.Bool  // mode client: the bridge listens
}

// Spec is the chat server's component: it depends on the tier.
func (c *Chat) Spec() supervise.Spec {
	cfg, t := c.Config.Config, c.Layout
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Server.Port))
	health := supervise.HTTPProbe{URL: "http://" + addr + "/health", Timeout: t.ProbeTimeout}
	if cfg.Mode == config.ModeClient {
		return c.remoteSpec()
	}
	return supervise.Spec{
		Name: api.ComponentChat, DependsOn: []string{api.ComponentVM},
		Service: supervise.ServiceFunc(c.serve),
		Ready:   health, ReadyTimeout: t.StartTimeout,
		Live: health, LiveInterval: 10 * time.Second,
		Ports: []int{cfg.Server.Port},
	}
}

func (c *Chat) serve(ctx context.Context) error {
	cfg := c.Config.Config
	p, err := c.connect(ctx)
	if err != nil {
		return err
	}
	if err := c.prepare(ctx, p); err != nil {
		return err
	}
	allow, err := c.Identities.Issue()
	if err != nil {
		return err
	}
	// The user's ear in the chat, for as long as this run lasts.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.User.Watch(wctx)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Server.Port))
	if cfg.Server.Chat == config.ChatUpstream {
		return c.runUpstream(ctx, addr)
	}
	args := []string{"chat", "serve", "--socket", guest.ServiceDir + "/" + guest.ChatSocket, "--channels", strings.Join(cfg.Channels, ","),
		// The host's relay, the agents' in-container one; the dashboard's page.
		"--allow-port", strconv.Itoa(cfg.Server.Port), "--allow-port", strconv.Itoa(guest.ChatPort),
		"--allow-origin", strings.Join(webguard.LocalOrigins(cfg.Server.Dashboard), ",")}
	return c.runService(ctx, p, api.ComponentChat, addr, c.Layout.ChatSocket, "", "", "server.port", append(args, allow...)...)
}

// prepare makes the services' socket dirs, sweeps what an earlier daemon
// left running (everything of the stack depends on the chat server, so its
// start is the one place to do it), and imports the services' base image.
func (c *Chat) prepare(ctx context.Context, p *sandbox.Podman) error {
	if err := c.Prepare(); err != nil {
		return err
	}
	if ids, err := p.ListManaged(c.Stack); err == nil && len(ids) > 0 {
		supervise.Report(ctx, "removing %d containers left by an earlier run", len(ids))
		for _, id := range ids {
			_ = p.Remove(id)
		}
	}
	// The chat server's and the dashboard's containers run from it.
	supervise.Report(ctx, "preparing the base image")
	return p.ImportImageFrom(BaseImage, sandbox.BaseRootfs)
}

// remoteSpec is the chat component with mode client: no chat server of
// the stack's own, the host's bridge to the remote one (client.remote)
// instead, where the agents, the dashboard and the engine (for the user)
// reach it through its socket; it has no TCP port. Healthy while the remote answers; a remote that
// is lost shows the component degraded with the reason, not restarted:
// the bridge tries it again on its own, with a backoff, and the agents,
// whose connections it cut, come back with theirs.
func (c *Chat) remoteSpec() supervise.Spec {
	cfg, t := c.Config.Config, c.Layout
	tlsConfig, tlsErr := clientTLS(cfg.Client.CAFile)
	c.bridge = &chat.Bridge{Remote: cfg.Client.Remote, TLS: tlsConfig,
		// Web pages are refused as by the embedded server: the host's
		// relay, the agents' in-container one; the dashboard's page.
		Guard: webguard.Guard{Ports: []int{cfg.Server.Port, guest.ChatPort}, Origins: webguard.LocalOrigins(cfg.Server.Dashboard)},
		Logf:  func(format string, args ...any) { c.note(api.ComponentChat, fmt.Sprintf(format, args...)) }}
	health := supervise.ProbeFunc(func(ctx context.Context) error {
		if !c.serving.Load() {
			return errors.New("preparing")
		}
		if h := c.bridge.Health(); h.Status == "healthy" && h.Relays > 0 {
			return nil // its clients' connections say it answers
		}
		return supervise.Degraded(c.bridge.Probe(ctx))
	})
	return supervise.Spec{
		Name: api.ComponentChat, DependsOn: []string{api.ComponentVM},
		Service: supervise.ServiceFunc(func(ctx context.Context) error {
			if tlsErr != nil {
				return supervise.Permanent(tlsErr)
			}
			return c.serveRemote(ctx)
		}),
		Ready: health, ReadyTimeout: t.StartTimeout,
		Live: health, LiveInterval: 10 * time.Second,
	}
}

// RemoteAway says why the remote chat server could not be reached at some
// time since t (it is tried now: a dial, within the bridge's backoff);
// nil when it could all along, or without one (mode server).
func (c *Chat) RemoteAway(ctx context.Context, since time.Time) error {
	if c.bridge == nil {
		return nil
	}
	return c.bridge.AwaySince(ctx, since)
}

// serveRemote prepares the tier as for a server of its own (the
// dashboard's image, the services' dirs), then serves the bridge on the
// services' socket.
func (c *Chat) serveRemote(ctx context.Context) error {
	p, err := c.connect(ctx)
	if err != nil {
		return err
	}
	if err := c.prepare(ctx, p); err != nil {
		return err
	}
	if _, err := c.Identities.Issue(); err != nil { // the lasting identities
		return err
	}
	sock := c.Layout.ChatSocket
	_ = os.Remove(sock) // an earlier run's
	var lc net.ListenConfig
	unixLn, err := lc.Listen(ctx, "unix", sock)
	if err != nil {
		return fmt.Errorf("the chat socket: %w", err)
	}
	// The directory decides who reaches it (the agents' uid's).
	if err := os.Chmod(sock, 0o666); err != nil {
		_ = unixLn.Close()
		return err
	}
	// A certificate the CA does not vouch for will not change by trying
	// again: the start fails now, saying so.
	var badCert *tls.CertificateVerificationError
	if err := c.bridge.Probe(ctx); errors.As(err, &badCert) {
		_ = unixLn.Close()
		return supervise.Permanent(fmt.Errorf("%w (client.ca_file, or the system's roots, must vouch for it)", err))
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.User.Watch(wctx)
	supervise.Report(ctx, "relaying the team's chat to %s", c.bridge.Remote)
	c.serving.Store(true)
	defer c.serving.Store(false)
	// Each connection is one to the remote: a bounded number, whoever
	// opens them (an agent in a loop).
	return listeners.Serve(ctx, c.bridge.Serve, listeners.Limit(unixLn, listeners.MaxConns))
}

// clientTLS verifies a remote server against the certificates of caFile,
// or ("") the system's roots.
func clientTLS(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("client.ca_file: %w", err)
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("client.ca_file %s: no PEM certificate in it", caFile)
	}
	return cfg, nil
}

// runUpstream runs the agentchat npm package's server on the host, after
// checking its version against the compatibility matrix; the agents and
// the dashboard reach it through the chat socket, relayed to its TCP port.
func (c *Chat) runUpstream(ctx context.Context, addr string) error {
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
	r, err := compat.Default(c.Version).Check("agentchat", version)
	if err != nil {
		return err
	}
	if !r.OK {
		return supervise.Permanent(fmt.Errorf("agentchat %s: %s; %s", version, r.Problem, r.Suggestion))
	}
	supervise.Report(ctx, "upstream agentchat %s", version)
	host, port, _ := net.SplitHostPort(addr)
	_ = os.Remove(c.Paths.ChatSocket()) // the embedded server's, from an earlier run
	fwd, err := relay.ForwardToTCP(ctx, c.Paths.ChatSocket(), addr)
	if err != nil {
		return err
	}
	defer func() { _ = fwd.Close() }()
	proc := &supervise.ProcService{Name: api.ComponentChat, Argv: []string{bin, "serve", "--port", port, "--host", host}, Logs: c.Logs}
	return proc.Serve(ctx)
}

// Dashboard is the dashboard's container, a client of the chat server,
// behind the host's front (which answers the team's routes from the
// engine).
type Dashboard struct {
	Env
	Identities *Identities
	// Team is the engine, read-only, as the page sees it.
	Team dashboard.TeamSource
}

// Spec is the dashboard's component: it depends on the chat server, and
// is healthy while it serves and is connected to the chat.
func (d *Dashboard) Spec() supervise.Spec {
	cfg, t := d.Config.Config, d.Layout
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Server.Dashboard))
	health := supervise.ProbeFunc(func(ctx context.Context) error {
		var h struct {
			Connected bool `json:"connected"`
		}
		if err := getJSON(ctx, "http://"+addr+"/api/health", t.ProbeTimeout, &h); err != nil {
			return err
		}
		if !h.Connected {
			return errors.New("not connected to the chat server")
		}
		return nil
	})
	return supervise.Spec{
		Name: api.ComponentDashboard, DependsOn: []string{api.ComponentChat},
		Service: supervise.ServiceFunc(func(ctx context.Context) error {
			p, err := d.connect(ctx)
			if err != nil {
				return err
			}
			// Its secrets' dir, which only its container mounts: the key a
			// browser must show, and its chat identity.
			if err := d.writeKey(); err != nil {
				return err
			}
			args := []string{"dashboard", "serve", "--chat-url", "ws://localhost", "--chat-socket", guest.ServiceDir + "/" + guest.ChatSocket,
				"--socket", guest.OwnDir + "/dashboard.sock", "--allow-port", strconv.Itoa(cfg.Server.Dashboard),
				"--key-file", guest.IdentityDir + "/" + dashboardKeyFile}
			identityDir := t.AgentsDir + "/" + filepath.Base(d.Paths.DashboardIdentityDir())
			if err := d.copySecrets(ctx, d.Paths.DashboardIdentityDir(), identityDir); err != nil {
				return fmt.Errorf("the dashboard's key and identity: %w", err)
			}
			if d.Identities.UserKey() != nil {
				args = append(args, "--identity", guest.IdentityDir+"/"+guest.IdentityFile)
			}
			key, err := DashboardKey(d.Paths)
			if err != nil {
				return err
			}
			port := cfg.Server.Dashboard
			front := &dashboard.Front{Socket: t.DashboardSocket, Key: key, Team: d.Team,
				Guard: webguard.Guard{Ports: []int{port}, Origins: webguard.LocalOrigins(port)}}
			return d.runServiceBehind(ctx, p, api.ComponentDashboard, addr, t.DashboardSocket, t.DashboardDir, identityDir, "server.dashboard", front, args...)
		}),
		Ready: health, ReadyTimeout: t.StartTimeout,
		Live: health, LiveInterval: 10 * time.Second,
		Ports: []int{cfg.Server.Dashboard},
	}
}

// dashboardKeyFile is the key's name in the dashboard's secrets dir.
const dashboardKeyFile = "dashboard.key"

// writeKey copies the dashboard's key into its secrets dir, readable by
// its container's uid only.
func (d *Dashboard) writeKey() error {
	key, err := DashboardKey(d.Paths)
	if err != nil {
		return err
	}
	uid, gid := d.Layout.OwnerUID, d.Layout.OwnerGID
	dir := d.Paths.DashboardIdentityDir()
	if err := sandbox.MkdirOwned(dir, uid, gid); err != nil {
		return fmt.Errorf("the dashboard's key: %w", err)
	}
	if err := atomicfile.WriteOwned(filepath.Join(dir, dashboardKeyFile), []byte(key+"\n"), 0o400, uid, gid); err != nil {
		return fmt.Errorf("the dashboard's key: %w", err)
	}
	return nil
}

// DashboardKey is the key a browser must show the dashboard, made (0600,
// in the state dir) the first time.
func DashboardKey(paths config.Paths) (string, error) {
	path := paths.DashboardKey()
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("the dashboard's key: %w", err)
	}
	var r [24]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	key := hex.EncodeToString(r[:])
	if err := atomicfile.WritePrivate(path, []byte(key+"\n")); err != nil {
		return "", fmt.Errorf("the dashboard's key: %w", err)
	}
	return key, nil
}

// DashboardLink is the dashboard's address with its key, for the user,
// and a page (0600 in the runtime dir) that sends a browser there, to open
// instead of the URL: a command line is every local account's to read.
func DashboardLink(cfg config.Config, paths config.Paths) (url, page string, err error) {
	key, err := DashboardKey(paths)
	if err != nil {
		return "", "", err
	}
	url = fmt.Sprintf("http://127.0.0.1:%d/?key=%s", cfg.Server.Dashboard, key)
	page = filepath.Join(paths.RuntimeDir, "dashboard.html")
	html := fmt.Sprintf("<!doctype html><meta charset=utf-8><meta name=referrer content=no-referrer>"+
		"<meta http-equiv=refresh content=\"0;url=%[1]s\"><title>TheSystem</title><a href=\"%[1]s\">Open the dashboard</a>\n", url)
	if err := atomicfile.WritePrivate(page, []byte(html)); err != nil {
		return "", "", fmt.Errorf("the dashboard's page: %w", err)
	}
	return url, page, nil
}
