package component

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/proxy"
	"github.com/thesystem-dev/thesystem/engine/supervise"
)

// Proxy is the key proxy as the stack's first component: the Host (keys,
// tokens, audit) on 127.0.0.1:<proxy.port> and on the socket the agents
// reach; a spent budget shows in its status detail while it runs.
type Proxy struct {
	Env
	Host *proxy.Host

	budgetNote atomic.Pointer[func(string)]
}

// BudgetSpent is the proxy's OnBudgetSpent: the message becomes the
// component's status detail (the menu bar notifies it), once.
func (p *Proxy) BudgetSpent(_, msg string) {
	if f := p.budgetNote.Load(); f != nil {
		(*f)(msg)
	}
}

// Spec is the proxy's component.
func (p *Proxy) Spec() supervise.Spec {
	cfg := p.Config.Config
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Proxy.Port))
	serving := supervise.HTTPProbe{URL: "http://" + addr + "/agentauth/health"}
	// Serving, and with its keys: a key store it cannot read shows it
	// degraded with the reason (it serves on, without keys; keys set
	// later reload it), never restarted for it.
	health := supervise.ProbeFunc(func(ctx context.Context) error {
		if err := serving.Check(ctx); err != nil {
			return err
		}
		return supervise.Degraded(p.Host.StoreProblem())
	})
	return supervise.Spec{
		Name: api.ComponentProxy,
		Service: supervise.ServiceFunc(func(ctx context.Context) error {
			// The socket dir is mounted read-only into the agents, whose
			// user must reach the socket; the runtime dir above it stays
			// private.
			if err := os.MkdirAll(p.Paths.SocketDir(), 0o755); err != nil {
				return err
			}
			_ = os.Chmod(p.Paths.SocketDir(), 0o755)
			tcp, sock, err := proxy.Listen(ctx, addr, p.Paths.ProxySocket(), 0o666)
			if err != nil {
				return err
			}
			p.note(api.ComponentProxy, fmt.Sprintf("listening on http://%s and unix:%s; keys for %v", addr, p.Paths.ProxySocket(), p.Host.Backends()))
			var last atomic.Value // one report per message
			note := func(msg string) {
				if last.Swap(msg) != msg {
					supervise.Report(ctx, "%s", msg)
				}
			}
			p.budgetNote.Store(&note)
			defer p.budgetNote.Store(nil)
			return p.Host.ServeListeners(ctx, tcp, sock)
		}),
		Ready: serving, ReadyTimeout: 10 * time.Second,
		Live: health, LiveInterval: 5 * time.Second,
		Ports: []int{cfg.Proxy.Port},
	}
}
