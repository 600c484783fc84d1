package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/thesystem-dev/thesystem/cli"
	"github.com/thesystem-dev/thesystem/engine/chat"
	"github.com/thesystem-dev/thesystem/engine/dashboard"
	"github.com/thesystem-dev/thesystem/engine/guest"
	"github.com/thesystem-dev/thesystem/engine/listeners"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
	"github.com/thesystem-dev/thesystem/engine/unixsock"
	"github.com/thesystem-dev/thesystem/engine/webguard"
)

func runInit(ctx context.Context, socketDir, chatSocket, tokenFile, proxyAddr, chatAddr string, argv []string) (int, error) {
	return guest.RunInit(ctx, guest.InitOptions{
		SocketDir: socketDir, ChatSocket: chatSocket, TokenFile: tokenFile, ProxyAddr: proxyAddr, ChatAddr: chatAddr, Argv: argv,
		Env: os.Environ(), Stdout: os.Stdout, Stderr: os.Stderr,
	})
}

func runAgent(ctx context.Context, run cli.AgentRun) error {
	var work *guest.WorkCopy
	if run.Project != "" {
		work = &guest.WorkCopy{Project: run.Project, Dir: guest.WorkspaceDir + "/project", Agent: run.Name}
	}
	return guest.RunAgent(ctx, guest.RunnerOptions{Work: work,
		Name: run.Name, Identity: run.Identity, ChatURL: os.Getenv("AGENTCHAT_URL"), Channels: run.Channels, Mission: run.Mission,
		Session: run.Session, Ask: run.Ask, MaxHops: run.MaxHops, Argv: run.Argv, Runtime: run.Runtime, Env: os.Environ(), Log: os.Stderr,
	})
}

// buildGuestImage builds the agents' image from this system's packages,
// into the podman service at opt.PodmanSocket (inside the VM).
func buildGuestImage(ctx context.Context, opt cli.GuestImageBuild, log io.Writer) (string, error) {
	g := sandbox.GuestImage{UID: opt.UID, GID: opt.GID, Log: log}
	for _, spec := range opt.Runtimes {
		rt, err := parseRuntime(spec)
		if err != nil {
			return "", err
		}
		g.Runtimes = append(g.Runtimes, rt)
	}
	if opt.Install {
		g.Install = sandbox.AptInstall(log)
	}
	p, err := sandbox.Connect(ctx, opt.PodmanSocket)
	if err != nil {
		return "", err
	}
	return g.Build(ctx, p)
}

// parseRuntime reads --runtime COMMAND@VERSION=FILE (the package as this
// release pins it: its integrity was checked where it was downloaded, its
// binary is checked here) or COMMAND=FILE (a binary).
func parseRuntime(spec string) (sandbox.Runtime, error) {
	name, file, ok := strings.Cut(spec, "=")
	if !ok || name == "" || file == "" {
		return sandbox.Runtime{}, fmt.Errorf("--runtime %q: want COMMAND@VERSION=FILE or COMMAND=FILE", spec)
	}
	command, version, isPkg := strings.Cut(name, "@")
	rt := sandbox.Runtime{Command: command, File: file}
	if isPkg {
		pkg, err := sandbox.PinnedPackage(command, version, runtime.GOARCH)
		if err != nil {
			return sandbox.Runtime{}, fmt.Errorf("--runtime %s: %w", spec, err)
		}
		rt.Package = pkg
	}
	return rt, nil
}

func runDashboard(ctx context.Context, opt cli.DashboardServe) error {
	if v := os.Getenv("AGENTCHAT_URL"); v != "" && opt.ChatSocket == "" {
		opt.ChatURL = v
	}
	var origins []string
	for _, p := range opt.Ports {
		origins = append(origins, webguard.LocalOrigins(p)...)
	}
	key := ""
	if opt.KeyFile != "" {
		b, err := os.ReadFile(opt.KeyFile)
		if err != nil {
			return fmt.Errorf("--key-file: %w", err)
		}
		if key = strings.TrimSpace(string(b)); len(key) < 32 {
			return fmt.Errorf("--key-file %s: a key of 32 characters or more, please", opt.KeyFile)
		}
	}
	d := dashboard.New(dashboard.Options{ChatURL: opt.ChatURL, ChatSocket: opt.ChatSocket, Identity: opt.Identity, Key: key,
		Guard: webguard.Guard{Ports: opt.Ports, Origins: origins}})
	lns, err := listenOn(ctx, opt.Listen, opt.Socket)
	if err != nil {
		return err
	}
	go func() { _ = d.Run(ctx) }()
	return listeners.Serve(ctx, d.Serve, lns...)
}

// listenOn opens the TCP address and/or the unix socket (mode 0666: the
// socket directory decides who reaches it).
func listenOn(ctx context.Context, listen, socket string) ([]net.Listener, error) {
	var lns []net.Listener
	if listen != "" {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", listen)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", listen, err)
		}
		lns = append(lns, ln)
	}
	if socket != "" {
		ln, err := unixsock.Listen(ctx, socket, 0o666)
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func runChat(ctx context.Context, opt cli.ChatServe, out io.Writer) error {
	var allow map[string]ed25519.PublicKey
	if opt.Allow != nil {
		allow = map[string]ed25519.PublicKey{}
		for name, text := range opt.Allow {
			pub, err := chat.ParsePublicText(text)
			if err != nil {
				return fmt.Errorf("--allow %s: %w", name, err)
			}
			allow[name] = pub
		}
	}
	// Who got in, who was refused, dropped, admitted and revoked: into
	// the component's log (which stamps the time).
	log := logrus.New()
	log.SetOutput(out)
	log.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true})
	s := chat.New(chat.Options{Channels: opt.Channels, Guard: opt.Guard, Allow: allow, Observers: opt.Observers, Admins: opt.Admins, Log: log})
	lns, err := listenOn(ctx, opt.Listen, opt.Socket)
	if err != nil {
		return err
	}
	for _, ln := range lns {
		fmt.Fprintf(out, "agentchat: listening on %s %s\n", ln.Addr().Network(), ln.Addr())
	}
	return listeners.Serve(ctx, s.Serve, lns...)
}
