// Package engine is TheSystem's core, pure Go, no UI: it owns the stack's
// state and runs it. Each subpackage has one responsibility (config,
// secrets, proxy, supervise, vm, sandbox, chat, api, compat, doctor); the
// Engine composes them and implements api.Backend, so every transport (the
// CLI through the local API, the menu bar) is a thin client. Imports point
// inward: engine never imports cli, menubar or app, which a test in app/
// enforces.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/component"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/doctor"
	"github.com/thesystem-dev/thesystem/engine/provider"
	"github.com/thesystem-dev/thesystem/engine/proxy"
	"github.com/thesystem-dev/thesystem/engine/redact"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
	"github.com/thesystem-dev/thesystem/engine/secrets"
	"github.com/thesystem-dev/thesystem/engine/supervise"
	"github.com/thesystem-dev/thesystem/engine/usage"
	"github.com/thesystem-dev/thesystem/engine/vm"
)

// Options configure an Engine.
type Options struct {
	Config     *config.Loaded
	Paths      config.Paths
	KeyService string // "" for secrets.DefaultService
	Version    string
	Log        logrus.FieldLogger
	// OnShutdown is called when a client asks the daemon to exit.
	OnShutdown func()
	// ExitOnStop makes a stop end the daemon too (a daemon that `start`
	// spawned has nothing to do once the stack is down).
	ExitOnStop bool
	// InitBinary is a static linux build of thesystem, mounted into every
	// container as its program (on Linux: this very binary).
	InitBinary string
	// PodmanArgs are global flags for the podman service the engine runs
	// (e.g. --root/--runroot/--storage-driver).
	PodmanArgs []string
	// PodmanConf is the containers.conf for that podman ("" for podman's
	// own). The caller's CONTAINER_HOST, DOCKER_HOST, CONTAINERS_CONF…
	// never reach it (sandbox.PodmanEnv).
	PodmanConf string
	// RuntimeBinary overrides the agent runtime (claude-code's binary);
	// "" downloads claude-code's linux package into the state dir.
	RuntimeBinary string
	// ForeignHost treats the host as not Linux, as a Mac is: every
	// host-side Linux step (its ldd, libraries, mmdebstrap, a runtime
	// binary of its own) is refused (THESYSTEM_FOREIGN_HOST=1; tests).
	ForeignHost bool
	// NPMRegistry is where the agents' runtime is downloaded from ("" for
	// sandbox.DefaultNPMRegistry).
	NPMRegistry string
	// DebianBase is a prebuilt Debian base for the agents' image (a
	// tarball: go run ./packaging/debianbase); "" builds it once, cached.
	DebianBase string
	// Sandbox adds the container tier (podman, chat, swarm) to the stack.
	Sandbox bool
	// LogFile, when set, keeps every component's lines on disk too
	// (config.Paths.EngineLog): `thesystem logs` reads them when no engine
	// runs. The previous one becomes LogFile.1.
	LogFile string
	// Limactl is the limactl binary for vm.driver lima; "" finds it
	// (bundled beside this binary, else on PATH).
	Limactl string
	// VMImages override the VM's default images (tests boot a local one).
	VMImages []vm.Image
	// VMStartTimeout bounds the VM's create and start; 0 means 10 minutes.
	VMStartTimeout time.Duration
}

// Engine runs the stack. Its methods are safe for concurrent use.
type Engine struct {
	opt   Options
	since time.Time
	log   logrus.FieldLogger
	proxy *proxy.Host
	sup   *supervise.Supervisor

	opMu sync.Mutex // one start/stop/restart at a time

	// tier is where the containers run (vm.driver), layout its paths.
	tier   vm.Driver
	layout vm.Layout

	// ids are the chat identities (with an allowlist); user is the
	// user's connection to the chat, which the engine holds.
	ids  *component.Identities
	user *component.UserChat
	// proxySpec is the proxy as the stack's component.
	proxySpec component.Proxy
	// agentComps are the agents' components, by name.
	agentComps map[string]*component.Agent

	// workSubs hear when an agent says it does something else, or
	// spends (spendTimer: at most once a second).
	workMu     sync.Mutex
	workSubs   map[chan struct{}]struct{}
	spendTimer *time.Timer

	// book is the account of what the agents spent.
	book *usage.Book

	storeOnce sync.Once
	store     secrets.Store
	storeErr  error
}

// New builds the engine for a configuration; nothing runs until Start.
func New(opt Options) (*Engine, error) {
	if opt.Log == nil {
		opt.Log = logrus.StandardLogger()
	}
	e := &Engine{opt: opt, since: time.Now(), log: opt.Log.WithField("component", "engine")}
	cfg := opt.Config.Config
	// The account, rebuilt from the audit log (a damaged line is skipped
	// and said).
	e.book = usage.NewBook(prices(cfg.Proxy))
	auditFiles := (&proxy.AuditLog{Path: opt.Paths.AuditFile()}).Files()
	if err := e.book.Load(auditFiles, func(w string) { e.log.Warn("usage: " + w) }); err != nil {
		e.log.WithError(err).Warn("usage: the audit log could not be read; the account starts empty")
	}
	p, err := proxy.NewHost(proxy.Options{
		Port:          cfg.Proxy.Port,
		Upstreams:     cfg.Proxy.Upstreams,
		Budget:        proxy.Budget{Tokens: cfg.Proxy.Budget.Tokens, Requests: cfg.Proxy.Budget.Requests, Period: cfg.Proxy.Budget.BudgetPeriod()},
		Log:           opt.Log,
		OnBudgetSpent: func(agent, msg string) { e.proxySpec.BudgetSpent(agent, msg) },
		OnRecord:      e.spent,
	}, e.keyStore, opt.Paths.UserTokenFile(), opt.Paths.AuditFile())
	if err != nil {
		return nil, err
	}
	e.proxy = p
	e.proxySpec.Host = p
	e.carryBudgets(time.Now())
	logs := supervise.NewLogs(2000)
	if opt.LogFile != "" {
		// Kept on disk too: a failed start's lines outlive its daemon.
		lf, err := supervise.OpenLogFile(opt.LogFile)
		if err != nil {
			return nil, err
		}
		logs.KeepIn(lf)
	}
	if e.tier, err = vm.New(vm.Options{
		Config: cfg, Paths: opt.Paths, Stack: e.stackName(), Component: api.ComponentVM, InitBinary: opt.InitBinary, Logs: logs,
		PodmanArgs: opt.PodmanArgs, PodmanConf: opt.PodmanConf, Root: os.Geteuid() == 0,
		Limactl: opt.Limactl, Images: opt.VMImages, StartTimeout: opt.VMStartTimeout,
	}); err != nil {
		return nil, err
	}
	e.layout = e.tier.Layout()
	e.ids = &component.Identities{Env: e.env(logs)}
	e.user = &component.UserChat{
		URL:      "ws://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Server.Port)),
		Socket:   userChatSocket(cfg, e.layout),
		Channels: cfg.Channels,
		Key:      e.ids.UserKey,
		Note: func(s string) {
			logs.Append(supervise.Line{Component: api.ComponentChat, Stream: "supervisor", Text: s})
		},
		Changed: e.workChanged,
		History: opt.Paths.ChatHistory(),
	}
	if damaged, err := e.user.LoadHistory(); err != nil || damaged > 0 {
		msg := fmt.Sprintf("chat history %s: %d damaged lines skipped", opt.Paths.ChatHistory(), damaged)
		if err != nil {
			msg = err.Error() + " (the chat starts without its history)"
		}
		logs.Append(supervise.Line{Component: api.ComponentChat, Stream: "supervisor", Text: msg})
	}
	e.sup, err = supervise.New(e.specs(logs), logs)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// specs is the stack, in dependency order. The VM tier, the chat server,
// the dashboard and the swarm join it with the sandbox and VM work.
func (e *Engine) specs(logs *supervise.Logs) []supervise.Spec {
	e.proxySpec.Env = e.env(logs)
	specs := []supervise.Spec{e.proxySpec.Spec()}
	if e.opt.Sandbox {
		specs = append(specs, e.sandboxSpecs(logs)...)
	}
	return specs
}

func (e *Engine) keyStore(ctx context.Context) (secrets.Store, error) {
	e.storeOnce.Do(func() { e.store, e.storeErr = secrets.Open(ctx, e.opt.KeyService) })
	return e.store, e.storeErr
}

// Start loads the keys, issues a fresh user token, and brings the stack up
// in dependency order; a failure rolls back what had started.
func (e *Engine) Start(ctx context.Context) error {
	if !e.opMu.TryLock() {
		return api.ErrBusy
	}
	defer e.opMu.Unlock()
	if e.opt.ForeignHost && e.opt.Sandbox && e.opt.Config.Config.VM.Driver == config.DriverNone {
		return api.Errorf(api.ErrStartFailed, "vm.driver none runs the containers in this host's own podman, and this host is not Linux "+
			"(or THESYSTEM_FOREIGN_HOST=1 says to treat it so): set vm.driver: lima in thesystem.yaml")
	}
	if err := e.proxy.Begin(ctx); err != nil {
		return api.Errorf(api.ErrUnavailable, err.Error())
	}
	if err := e.sup.Start(ctx); err != nil {
		e.proxy.End()
		return api.Errorf(api.ErrStartFailed, err.Error())
	}
	e.log.Info("stack started")
	return nil
}

// Stop takes the stack down in reverse order.
func (e *Engine) Stop(context.Context) error {
	if !e.opMu.TryLock() {
		return api.ErrBusy
	}
	defer e.opMu.Unlock()
	wasRunning := e.Status().Running
	e.sup.Stop()
	e.proxy.End()
	if wasRunning {
		e.log.Info("stack stopped")
	}
	if e.opt.ExitOnStop && e.opt.OnShutdown != nil {
		e.opt.OnShutdown()
	}
	return nil
}

// Restart restarts one component and what depends on it.
func (e *Engine) Restart(ctx context.Context, name string) error {
	canonical, err := e.logComponent(name) // a component, or an agent
	switch {
	case err != nil:
		return err
	case canonical == "":
		return api.Errorf(api.ErrUnknownComponent, "name a component or an agent to restart")
	}
	if !e.opMu.TryLock() {
		return api.ErrBusy
	}
	defer e.opMu.Unlock()
	err = e.sup.Restart(ctx, canonical)
	var se *supervise.StartError
	switch {
	case errors.Is(err, supervise.ErrUnknownComponent):
		return api.Errorf(api.ErrUnknownComponent, fmt.Sprintf("%s is not part of this stack yet", canonical))
	case errors.As(err, &se):
		return api.Errorf(api.ErrStartFailed, err.Error())
	}
	return err
}

// Reinstall drops the cached images and runtimes and restarts the
// container tier from the chat server on, which rebuilds them; the proxy
// and the podman service keep running.
func (e *Engine) Reinstall(ctx context.Context) error {
	if !e.opt.Sandbox {
		return api.Errorf(api.ErrBadRequest, "no container tier in this stack")
	}
	if !e.opMu.TryLock() {
		return api.ErrBusy
	}
	defer e.opMu.Unlock()
	p, err := sandbox.Connect(ctx, e.layout.PodmanSocket)
	if err != nil {
		return api.Errorf(api.ErrNotRunning, "start the stack first: reinstall needs its podman service ("+err.Error()+")")
	}
	err = e.sup.RestartWith(ctx, api.ComponentChat, func() error {
		n, err := p.RemoveImagesByPrefix("localhost/thesystem-")
		if err != nil {
			return err
		}
		e.log.WithField("images", n).Info("reinstall: cached images removed")
		if e.opt.RuntimeBinary == "" {
			return os.RemoveAll(e.opt.Paths.RuntimesDir())
		}
		return nil
	})
	if err != nil {
		return api.Errorf(api.ErrStartFailed, err.Error())
	}
	return nil
}

// Destroy stops the stack and deletes what it built: the VM and its state
// (vm.driver lima), or the containers, the agents' workspaces and the
// images in the host's podman (none); installed runtimes. Keys,
// thesystem.yaml and the audit log stay; the next start rebuilds the rest.
func (e *Engine) Destroy(ctx context.Context) error {
	if !e.opt.Sandbox {
		return api.Errorf(api.ErrBadRequest, "nothing to destroy without the container tier")
	}
	if !e.opMu.TryLock() {
		return api.ErrBusy
	}
	e.sup.Stop()
	err := e.tier.Destroy(ctx)
	if err == nil && e.opt.RuntimeBinary == "" {
		err = os.RemoveAll(e.opt.Paths.RuntimesDir())
	}
	e.opMu.Unlock()
	if err != nil {
		return err
	}
	e.log.Info("destroyed")
	if e.opt.ExitOnStop && e.opt.OnShutdown != nil {
		e.opt.OnShutdown()
	}
	return nil
}

// Shutdown stops the stack and asks the daemon to exit.
func (e *Engine) Shutdown() {
	_ = e.Stop(context.Background())
	if e.opt.OnShutdown != nil {
		e.opt.OnShutdown()
	}
}

func (e *Engine) status(snap supervise.Snapshot) api.Status {
	st := api.Status{Seq: snap.Seq, PID: os.Getpid(), Version: e.opt.Version, Since: e.since, Config: e.opt.Config.File, ExitOnStop: e.opt.ExitOnStop,
		Project: e.opt.Config.Config.VM.Mount}
	for _, c := range snap.Components {
		st.Components = append(st.Components, api.Component{
			Name: c.Name, State: string(c.State), Since: c.Since, Restarts: c.Restarts, Crashes: c.Crashes,
			LastError: c.LastError, Detail: c.Detail, PID: c.PID, Ports: c.Ports, LastLines: c.LastLines,
		})
		if c.State != supervise.StateStopped {
			st.Running = true
		}
	}
	today, total := e.today()
	st.Today = &total
	st.Agents = e.agentsIn(st.Components, today)
	return st
}

// Status is the current state.
func (e *Engine) Status() api.Status { return e.status(e.sup.Status()) }

// Subscribe returns the current state and every change after it: of a
// component's, or of what an agent says it does.
func (e *Engine) Subscribe() (api.Status, <-chan api.Status, func()) {
	first, ch, stop := e.sup.Subscribe()
	work := make(chan struct{}, 1)
	e.workMu.Lock()
	if e.workSubs == nil {
		e.workSubs = map[chan struct{}]struct{}{}
	}
	e.workSubs[work] = struct{}{}
	e.workMu.Unlock()
	out := make(chan api.Status, 64)
	go func() {
		defer close(out)
		defer func() {
			e.workMu.Lock()
			delete(e.workSubs, work)
			e.workMu.Unlock()
		}()
		last := first
		for {
			select {
			case snap, ok := <-ch:
				if !ok {
					return
				}
				last = snap
			case <-work:
			}
			out <- e.status(last)
		}
	}()
	return e.status(first), out, stop
}

// workChanged tells the subscribers that an agent does something else.
func (e *Engine) workChanged() {
	e.workMu.Lock()
	defer e.workMu.Unlock()
	for ch := range e.workSubs {
		select {
		case ch <- struct{}{}:
		default: // one is pending already
		}
	}
}

func toLines(ls []supervise.Line) []api.LogLine {
	out := make([]api.LogLine, len(ls))
	for i, l := range ls {
		out[i] = api.LogLine(l)
	}
	return out
}

func (e *Engine) logComponent(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	var names []string
	for _, a := range e.agents() {
		if name == a.Name {
			return a.Name, nil
		}
		names = append(names, a.Name)
	}
	if strings.HasPrefix(name, "agent-") {
		return "", api.Errorf(api.ErrUnknownComponent, fmt.Sprintf("no %s in this stack (its agents: %s)", redact.Quote(name), strings.Join(names, ", ")))
	}
	c, err := api.ParseComponent(name)
	if err != nil {
		return "", api.Errorf(api.ErrUnknownComponent, err.Error())
	}
	return c, nil
}

// Logs returns the last n lines of a component ("" for all).
func (e *Engine) Logs(component string, n int) ([]api.LogLine, error) {
	c, err := e.logComponent(component)
	if err != nil {
		return nil, err
	}
	return toLines(e.sup.Logs().Tail(c, n)), nil
}

// FollowLogs returns the last n lines and the ones after them.
func (e *Engine) FollowLogs(component string, n int) ([]api.LogLine, <-chan api.LogLine, func(), error) {
	c, err := e.logComponent(component)
	if err != nil {
		return nil, nil, nil, err
	}
	backlog, ch, stop := e.sup.Logs().Follow(c, n)
	out := make(chan api.LogLine, 256)
	go func() {
		defer close(out)
		for l := range ch {
			out <- api.LogLine(l)
		}
	}()
	return toLines(backlog), out, stop, nil
}

// Keys lists the stored keys' fingerprints.
func (e *Engine) Keys(ctx context.Context) ([]api.KeyInfo, error) {
	store, err := e.keyStore(ctx)
	if err != nil {
		return nil, api.Errorf(api.ErrUnavailable, err.Error())
	}
	keys, err := secrets.LoadAll(ctx, store)
	if err != nil {
		return nil, api.Errorf(api.ErrUnavailable, err.Error())
	}
	out := []api.KeyInfo{}
	for _, pr := range provider.All() {
		if k, ok := keys[pr.Name]; ok {
			out = append(out, api.KeyInfo{Provider: pr.Name, Fingerprint: k.Fingerprint()})
		}
	}
	return out, nil
}

// SetKey stores a key and hot-swaps it into the proxy; requests in flight
// keep the key they were sent with.
func (e *Engine) SetKey(ctx context.Context, name, key string) (api.KeyInfo, error) {
	p, err := provider.Parse(name)
	if err != nil {
		return api.KeyInfo{}, api.Errorf(api.ErrBadRequest, err.Error())
	}
	if err := p.CheckKey(key); err != nil {
		return api.KeyInfo{}, api.Errorf(api.ErrBadRequest, err.Error())
	}
	store, err := e.keyStore(ctx)
	if err != nil {
		return api.KeyInfo{}, api.Errorf(api.ErrUnavailable, err.Error())
	}
	k := secrets.NewKey(key)
	if err := store.Set(ctx, p.Name, k); err != nil {
		return api.KeyInfo{}, api.Errorf(api.ErrUnavailable, err.Error())
	}
	if err := e.proxy.Reload(ctx); err != nil { // the one way keys reach the proxy
		return api.KeyInfo{}, api.Errorf(api.ErrUnavailable, fmt.Sprintf("stored, but not swapped into the proxy: %v", err))
	}
	e.log.WithField("provider", p.Name).Info("key stored and hot-swapped")
	return api.KeyInfo{Provider: p.Name, Fingerprint: k.Fingerprint()}, nil
}

// DeleteKey deletes a key and drops it from the proxy.
func (e *Engine) DeleteKey(ctx context.Context, name string) error {
	p, err := provider.Parse(name)
	if err != nil {
		return api.Errorf(api.ErrBadRequest, err.Error())
	}
	store, err := e.keyStore(ctx)
	if err != nil {
		return api.Errorf(api.ErrUnavailable, err.Error())
	}
	if err := store.Delete(ctx, p.Name); errors.Is(err, secrets.ErrNotFound) {
		return api.Errorf(api.ErrNotFound, fmt.Sprintf("no %s key is stored", p.Name))
	} else if err != nil {
		return api.Errorf(api.ErrUnavailable, err.Error())
	}
	if err := e.proxy.Reload(ctx); err != nil {
		return api.Errorf(api.ErrUnavailable, fmt.Sprintf("deleted, but the proxy still has it: %v", err))
	}
	return nil
}

// RotateTokens revokes and re-issues every agent token, and hands each
// agent its new one.
func (e *Engine) RotateTokens(ctx context.Context) (int, error) {
	fresh, err := e.proxy.RotateAgentTokens()
	if err != nil {
		return 0, err
	}
	var errs []error
	for name, tok := range fresh {
		errs = append(errs, e.env(nil).DeliverToken(ctx, name, tok))
	}
	return len(fresh), errors.Join(errs...)
}

// Agents lists the swarm's agents and their state.
func (e *Engine) Agents() []api.Agent { return e.Status().Agents }

// agentsIn is the agents with their components' states and what each
// says it does.
func (e *Engine) agentsIn(comps []api.Component, today map[string]api.AgentSpend) []api.Agent {
	byName := map[string]api.Component{}
	for _, c := range comps {
		byName[c.Name] = c
	}
	out := []api.Agent{}
	now := time.Now()
	for _, a := range e.agents() {
		if c, ok := byName[a.Name]; ok {
			ag := api.Agent{Name: a.Name, Backend: a.Group.Backend, Provider: a.Group.Provider, State: c.State, Since: c.Since,
				InChat: e.user.Present(a.Name), Budget: e.budgetLeft(a.Name, now)}
			if t, ok := today[a.Name]; ok {
				ag.Today = &t.UsageRow
			}
			if w, ok := e.user.Activity(a.Name); ok {
				ag.Work, ag.Task, ag.WorkSince, ag.Queued = w.State, w.Task, w.Since, w.Queued
			}
			out = append(out, ag)
		}
	}
	return out
}

// Doctor runs the checks with the engine's live view.
func (e *Engine) Doctor(ctx context.Context) []api.Check {
	store, err := e.keyStore(ctx)
	ours := map[int]bool{}
	for _, c := range e.Status().Components {
		if c.State != api.StateStopped && c.State != api.StateFailed {
			for _, p := range c.Ports {
				ours[p] = true
			}
		}
	}
	in := doctor.Inputs{Config: e.opt.Config, Store: store, StoreErr: err, Version: e.opt.Version, Ours: ours,
		MissingRuntimes: component.MissingRuntimes(e.opt.Paths, e.opt.Config.Config, e.opt.RuntimeBinary)}
	in.LookPath = LookTool(e.opt.Limactl)
	if st, err := e.tier.Status(ctx); err == nil {
		in.VM = strings.TrimSpace(string(st.State) + " " + st.Detail)
	}
	return doctor.Run(ctx, in)
}

// LookTool finds the tools doctor checks: limactl the way the VM driver
// does (override, bundled beside this binary, PATH), the others on PATH.
func LookTool(limactl string) func(string) (string, error) {
	return func(name string) (string, error) {
		switch {
		case name == "limactl" && limactl != "":
			return limactl, nil
		case name == "limactl":
			return vm.FindLimactl(os.Executable, exec.LookPath)
		}
		return exec.LookPath(name)
	}
}

// Chat is the team chat's last n messages, as the user heard them.
func (e *Engine) Chat(n int) []api.ChatMessage { return toMessages(e.user.Tail(n)) }

// FollowChat is the last n messages and the ones after them.
func (e *Engine) FollowChat(n int) ([]api.ChatMessage, <-chan api.ChatMessage, func()) {
	backlog, ch, stop := e.user.Follow(n)
	out := make(chan api.ChatMessage, 256)
	go func() {
		defer close(out)
		for m := range ch {
			out <- api.ChatMessage(m)
		}
	}()
	return toMessages(backlog), out, stop
}

func toMessages(ms []component.Message) []api.ChatMessage {
	out := make([]api.ChatMessage, len(ms))
	for i, m := range ms {
		out[i] = api.ChatMessage(m)
	}
	return out
}

// ChatSend says content as the user, to a channel or an agent.
func (e *Engine) ChatSend(ctx context.Context, to, content string) error {
	return apiError(e.user.Send(ctx, to, content))
}

// Dashboard is the dashboard's address with its key, and a page that
// opens it.
func (e *Engine) Dashboard() (api.Dashboard, error) {
	u, page, err := component.DashboardLink(e.opt.Config.Config, e.opt.Paths)
	if err != nil {
		return api.Dashboard{}, api.Errorf(api.ErrUnavailable, err.Error())
	}
	return api.Dashboard{URL: u, Page: page}, nil
}

// AgentBundle writes the agent's branch as a git bundle to w and says
// which branch and commit it holds.
func (e *Engine) AgentBundle(ctx context.Context, name string, w io.Writer) (api.Bundle, error) {
	a, err := e.agentComp(name)
	if err != nil {
		return api.Bundle{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	branch, commit, err := a.Bundle(ctx, w)
	if err != nil {
		return api.Bundle{}, apiError(err)
	}
	return api.Bundle{Agent: name, Branch: branch, Commit: commit}, nil
}

// AgentDiff is what the agent changed in its working copy, as it says.
func (e *Engine) AgentDiff(ctx context.Context, name string, stat bool) (string, error) {
	a, err := e.agentComp(name)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	d, err := a.Diff(ctx, stat)
	if err != nil {
		return "", apiError(err)
	}
	// The warning first: a long diff would bury it.
	return e.overlaps(ctx, name) + d, nil
}

// overlaps warns when other agents' branches touch the files this one
// changed, before anyone merges: the agents and the files, or "".
func (e *Engine) overlaps(ctx context.Context, name string) string {
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	mine, err := e.agentComps[name].Files(fctx)
	if err != nil || len(mine) == 0 {
		return ""
	}
	var b strings.Builder
	for _, other := range e.agents() {
		a := e.agentComps[other.Name]
		if other.Name == name || a == nil {
			continue
		}
		theirs, err := a.Files(fctx)
		if err != nil {
			continue // not running, or no working copy
		}
		var both []string
		for _, f := range theirs {
			if slices.Contains(mine, f) {
				both = append(both, f)
			}
		}
		if len(both) > 0 {
			fmt.Fprintf(&b, "warning: %s's branch changes the same files: %s\n", other.Name, strings.Join(both, ", "))
		}
	}
	if b.Len() > 0 {
		b.WriteString("(merge one branch before the other, or ask one agent to `agents sync` after the other's work is in)\n\n")
	}
	return b.String()
}

// agentComp is the named agent's component.
func (e *Engine) agentComp(name string) (*component.Agent, error) {
	if a, ok := e.agentComps[name]; ok {
		return a, nil
	}
	var names []string
	for _, a := range e.agents() {
		names = append(names, a.Name)
	}
	return nil, api.Errorf(api.ErrNotFound, fmt.Sprintf("no agent %s in this stack (its agents: %s)", redact.Quote(name), strings.Join(names, ", ")))
}

// apiError maps a component's error to the API's code.
func apiError(err error) error {
	var ce *component.Error
	if !errors.As(err, &ce) {
		return err
	}
	kind := map[component.Kind]*api.Error{component.BadRequest: api.ErrBadRequest, component.NotFound: api.ErrNotFound,
		component.NotRunning: api.ErrNotRunning, component.Unavailable: api.ErrUnavailable}[ce.Kind]
	if kind == nil {
		kind = api.ErrInternal
	}
	return api.Errorf(kind, ce.Msg)
}

var _ api.Backend = (*Engine)(nil)

// userChatSocket is where the engine's own chat connection goes: with a
// remote chat server (mode client), the bridge's socket, whose directory
// only this user reaches (the bridge has no TCP port: another local
// account has no way into the team's chat through it); else server.port.
func userChatSocket(cfg config.Config, l vm.Layout) string {
	if cfg.Mode == config.ModeClient {
		return l.ChatSocket
	}
	return ""
}
