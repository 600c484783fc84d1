package main

import (
	"context"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/proxy"
	"github.com/thesystem-dev/thesystem/engine/secrets"
)

// runProxy wires the key proxy from the configuration: keys from the OS key
// store, files in the state and runtime dirs, SIGHUP to reload the keys.
func runProxy(ctx context.Context, l *config.Loaded, paths config.Paths, keyService string, out io.Writer) error {
	store, err := secrets.Open(ctx, keyService)
	if err != nil {
		return err
	}
	log := logrus.New()
	log.SetOutput(os.Stderr)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}
	}()

	p := l.Config.Proxy
	return proxy.Run(ctx, proxy.RunOptions{
		Options: proxy.Options{
			Upstreams: p.Upstreams,
			Budget:    proxy.Budget{Tokens: p.Budget.Tokens, Requests: p.Budget.Requests, Period: p.Budget.BudgetPeriod()},
			Log:       log,
		},
		Store:         store,
		Addr:          net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port)),
		Socket:        paths.ProxySocket(),
		TokenFile:     paths.UserTokenFile(),
		AuditFile:     paths.AuditFile(),
		ControlSocket: paths.ProxyControlSocket(),
		Reload:        reload,
		Out:           out,
	})
}
