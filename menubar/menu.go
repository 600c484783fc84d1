package menubar

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
)

// Client is what the menu needs of the engine: its local API.
type Client interface {
	Status(ctx context.Context) (api.Status, error)
	Events(ctx context.Context, fn func(api.Status) bool) error
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Restart(ctx context.Context, component string) error
	SetKey(ctx context.Context, provider, key string) (api.KeyInfo, error)
	Doctor(ctx context.Context) ([]api.Check, error)
	Destroy(ctx context.Context) error
	Dashboard(ctx context.Context) (api.Dashboard, error)
	AgentDiff(ctx context.Context, agent string) (string, error)
	ExportBranch(ctx context.Context, agent, dir, branch string, force bool) (api.Exported, error)
}

// Desktop is what the menu asks of the platform: a secret typed into a
// native dialog, notifications, opening a URL or a file, showing text.
type Desktop interface {
	AskSecret(ctx context.Context, title, prompt string) (secret string, ok bool, err error)
	// Confirm asks before a destructive action, named by action.
	Confirm(ctx context.Context, title, message, action string) (bool, error)
	Notify(ctx context.Context, title, body string) error
	Open(ctx context.Context, target string) error
	Show(ctx context.Context, title, text string) error
}

// LoginItem starts the app at login.
type LoginItem interface {
	Enabled() (bool, error)
	SetEnabled(on bool) error
}

// Tray is the status area: what the menu needs of fyne.io/systray.
type Tray interface {
	SetIcon(png []byte)
	SetTooltip(text string)
	AddItem(title, tooltip string) Item
	AddCheckbox(title, tooltip string, checked bool) Item
	AddSeparator()
}

// Item is one menu item.
type Item interface {
	SetTitle(title string)
	SetTooltip(tooltip string)
	Enable()
	Disable()
	Show()
	Hide()
	Check()
	Uncheck()
	Checked() bool
	AddSub(title, tooltip string) Item
	Clicked() <-chan struct{}
}

// Menu is the menu-bar app's menu: the stack's state at a glance, one
// line per component with the error behind it, and the actions. It is a
// client of the engine's API and events only, like the CLI.
type Menu struct {
	Client    Client
	Desktop   Desktop
	Login     LoginItem // nil: no "Launch at Login" item
	Providers []string  // for "Set API Key ▸"
	LogFile   string
	// Quit is called by the Quit item (the app stops the engine and exits).
	Quit func()

	mu         sync.Mutex
	header     Item
	today      Item            // "Today: $X (N tokens)"
	components map[string]Item // the fixed components, top level
	agents     Item            // "Agents ▸"
	agentItems map[string]Item
	restart    Item // "Restart component ▸"
	restartFor map[string]bool
	last       map[string]string // component → last state, for notifications
	lastDetail map[string]string
	warned     map[string]string // agent → the budget period warned of
	project    string            // where Export Branch puts a branch (vm.mount)
}

// Run builds the menu in tray, keeps it in step with the engine's events
// and runs the actions clicked, until ctx ends.
func (m *Menu) Run(ctx context.Context, tray Tray) {
	m.components = map[string]Item{}
	m.agentItems = map[string]Item{}
	m.restartFor = map[string]bool{}
	m.last = map[string]string{}
	m.lastDetail = map[string]string{}
	m.warned = map[string]string{}

	tray.SetIcon(Icon(StateStopped))
	tray.SetTooltip("TheSystem: not running")
	m.header = tray.AddItem("TheSystem — not running", "")
	m.header.Disable()
	m.today = tray.AddItem("Today: nothing spent yet", "what the agents (and your own token) spent through the proxy since midnight")
	m.today.Disable()
	tray.AddSeparator()
	for _, name := range api.Components() {
		it := tray.AddItem("○ "+name, "")
		it.Disable()
		m.components[name] = it
	}
	m.agents = tray.AddItem("Agents", "the swarm's agents")
	m.agents.Hide() // until the stack has some
	tray.AddSeparator()
	m.on(ctx, tray.AddItem("Start", "bring the stack up"), func() { m.act(ctx, "Start", m.Client.Start) })
	m.on(ctx, tray.AddItem("Stop", "take the stack down"), func() { m.act(ctx, "Stop", m.Client.Stop) })
	m.restart = tray.AddItem("Restart component", "restart one component and what depends on it")
	for _, name := range api.Components() {
		m.addRestart(ctx, name)
	}
	m.on(ctx, tray.AddItem("Open Dashboard", "the team's live page, in the browser"), func() {
		// Through the engine's page that sends the browser on with the
		// key: the URL itself on a command line would be everyone's to see.
		d, err := m.Client.Dashboard(ctx)
		if err == nil {
			err = m.Desktop.Open(ctx, d.Page)
		}
		if err != nil {
			m.notify(ctx, "Open Dashboard", err.Error())
		}
	})
	keys := tray.AddItem("Set API Key", "stored in the key store, never in a file")
	for _, p := range m.Providers {
		m.on(ctx, keys.AddSub(p, "set the "+p+" key"), func() { m.setKey(ctx, p) })
	}
	m.on(ctx, tray.AddItem("Show Logs", m.LogFile), func() {
		if err := m.Desktop.Open(ctx, m.LogFile); err != nil {
			m.notify(ctx, "Show Logs", err.Error())
		}
	})
	if m.Login != nil {
		on, err := m.Login.Enabled()
		login := tray.AddCheckbox("Launch at Login", "start TheSystem when you log in", on && err == nil)
		m.on(ctx, login, func() {
			want := !login.Checked()
			if err := m.Login.SetEnabled(want); err != nil {
				m.notify(ctx, "Launch at Login", err.Error())
				return
			}
			if want {
				login.Check()
			} else {
				login.Uncheck()
			}
		})
	}
	m.on(ctx, tray.AddItem("Doctor", "check the machine and the configuration"), func() { m.doctor(ctx) })
	m.on(ctx, tray.AddItem("Destroy…", "delete what the stack built, the agents' workspaces included"), func() { m.destroy(ctx) })
	tray.AddSeparator()
	m.on(ctx, tray.AddItem("Quit", "stop the stack and quit"), func() {
		if m.Quit != nil {
			m.Quit()
		}
	})

	// The engine's state, as it changes; the daemon may come and go.
	for ctx.Err() == nil {
		err := m.Client.Events(ctx, func(st api.Status) bool {
			m.update(ctx, tray, st)
			return true
		})
		if ctx.Err() != nil {
			return
		}
		m.unreachable(tray, err)
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

// on runs fn, in its own goroutine, at each click of it.
func (m *Menu) on(ctx context.Context, it Item, fn func()) {
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-it.Clicked():
				go fn()
			}
		}
	}()
}

// act runs an API call and tells the user when it failed.
func (m *Menu) act(ctx context.Context, what string, call func(context.Context) error) {
	if err := call(ctx); err != nil {
		m.notify(ctx, what+" failed", err.Error())
	}
}

func (m *Menu) notify(ctx context.Context, title, body string) {
	_ = m.Desktop.Notify(ctx, title, firstLine(body))
}

// setKey asks for a key in a native dialog and stores it through the
// engine, which hot-swaps it into the proxy. The key goes nowhere else.
func (m *Menu) setKey(ctx context.Context, provider string) {
	key, ok, err := m.Desktop.AskSecret(ctx, "Set the "+provider+" API key",
		"Paste your "+provider+" API key. It is kept in the system key store; the agents never see it.")
	switch {
	case err != nil:
		m.notify(ctx, "Set API Key", err.Error())
		return
	case !ok || strings.TrimSpace(key) == "":
		return
	}
	info, err := m.Client.SetKey(ctx, provider, strings.TrimSpace(key))
	if err != nil {
		m.notify(ctx, "Set API Key failed", err.Error())
		return
	}
	m.notify(ctx, "API key stored", fmt.Sprintf("%s key %s is in use", provider, info.Fingerprint))
}

func (m *Menu) doctor(ctx context.Context) {
	checks, err := m.Client.Doctor(ctx)
	if err != nil {
		m.notify(ctx, "Doctor failed", err.Error())
		return
	}
	var b strings.Builder
	for _, c := range checks {
		fmt.Fprintf(&b, "%-4s %s: %s\n", strings.ToUpper(c.Status), c.ID, c.Detail)
		if c.Fix != "" && c.Status != api.CheckOK {
			fmt.Fprintf(&b, "     fix: %s\n", c.Fix)
		}
	}
	_ = m.Desktop.Show(ctx, "TheSystem Doctor", b.String())
}

// destroy asks first: it deletes the agents' workspaces.
func (m *Menu) destroy(ctx context.Context) {
	ok, err := m.Desktop.Confirm(ctx, "Destroy the stack?",
		"This stops everything and deletes what the stack built: the VM, the containers, the images and the agents' workspaces. Keys and thesystem.yaml stay.",
		"Destroy")
	if err != nil {
		m.notify(ctx, "Destroy", err.Error())
		return
	}
	if !ok {
		return
	}
	if err := m.Client.Destroy(ctx); err != nil {
		m.notify(ctx, "Destroy failed", err.Error())
		return
	}
	m.notify(ctx, "Destroyed", "Start rebuilds the stack from thesystem.yaml")
}

func (m *Menu) addRestart(ctx context.Context, name string) {
	if m.restartFor[name] {
		return
	}
	m.restartFor[name] = true
	m.on(ctx, m.restart.AddSub(name, "restart "+name), func() {
		m.act(ctx, "Restart "+name, func(ctx context.Context) error { return m.Client.Restart(ctx, name) })
	})
}

// update shows a status: the icon and tooltip, the header, each
// component's line, the agents; a component that just failed is notified.
func (m *Menu) update(ctx context.Context, tray Tray, st api.Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Overall(st)
	tray.SetIcon(Icon(s))
	tray.SetTooltip(Tooltip(st))
	m.header.SetTitle("TheSystem — " + string(s))
	m.project = st.Project
	m.today.SetTitle(TodayLine(st))
	work := map[string]api.Agent{}
	for _, a := range st.Agents {
		work[a.Name] = a
		if period, text, ok := BudgetWarning(a); ok && m.warned[a.Name] != period {
			m.warned[a.Name] = period
			go m.notify(ctx, a.Name+" is near its budget", text)
		}
	}
	seen := map[string]bool{}
	for _, c := range st.Components {
		seen[c.Name] = true
		it, fixed := m.components[c.Name]
		if !fixed {
			it = m.agentItems[c.Name]
			if it == nil {
				it = m.addAgent(ctx, c.Name)
			}
		}
		title, tip := ComponentTitle(c), ComponentTooltip(c)
		if a, ok := work[c.Name]; ok {
			title, tip = AgentTitle(c, a), cmp.Or(AgentWork(a), tip)
		}
		it.SetTitle(title)
		it.SetTooltip(tip)
		it.Show()
		if c.State == api.StateFailed && m.last[c.Name] != api.StateFailed {
			why := c.LastError
			if why == "" {
				why = "see Show Logs"
			}
			go m.notify(ctx, c.Name+" failed", why)
		}
		m.last[c.Name] = c.State
		if c.Name == api.ComponentProxy && strings.Contains(c.Detail, "spent its budget") && c.Detail != m.lastDetail[c.Name] {
			go m.notify(ctx, "An agent ran out of budget", c.Detail)
		}
		m.lastDetail[c.Name] = c.Detail
	}
	for name, it := range m.components {
		if !seen[name] {
			it.SetTitle("○ " + name + " — not in this stack")
		}
	}
	for name, it := range m.agentItems {
		if !seen[name] {
			it.Hide()
		}
	}
}

// addAgent is an agent's line under Agents, with what can be done with
// its work: Show Changes, Export Branch.
func (m *Menu) addAgent(ctx context.Context, name string) Item {
	it := m.agents.AddSub(name, "")
	m.agents.Show()
	m.agentItems[name] = it
	m.addRestart(ctx, name)
	m.on(ctx, it.AddSub("Show Changes", "the agent's commits and changes on its branch"), func() { m.showChanges(ctx, name) })
	m.on(ctx, it.AddSub("Export Branch", "the agent's branch into your project as a local branch (no checkout, no merge)"), func() {
		m.exportBranch(ctx, name)
	})
	return it
}

// showChanges shows what the agent changed (agents diff).
func (m *Menu) showChanges(ctx context.Context, agent string) {
	d, err := m.Client.AgentDiff(ctx, agent)
	if err != nil {
		m.notify(ctx, "Changes of "+agent, "failed: "+firstLine(err.Error()))
		return
	}
	_ = m.Desktop.Show(ctx, "Changes of "+agent, d)
}

// exportBranch brings the agent's branch into the project (agents
// export); an existing branch of that name is overwritten only if the
// user says so.
func (m *Menu) exportBranch(ctx context.Context, agent string) {
	m.mu.Lock()
	project := m.project
	m.mu.Unlock()
	title := "Export " + agent + "'s branch"
	x, err := m.Client.ExportBranch(ctx, agent, project, "", false)
	var exists *api.BranchExistsError
	if errors.As(err, &exists) {
		ok, cerr := m.Desktop.Confirm(ctx, title, fmt.Sprintf("Branch %s exists in %s. Overwrite it with %s's? (Your working tree and current branch stay as they are.)",
			exists.Branch, exists.Repo, agent), "Overwrite")
		if cerr != nil || !ok {
			return
		}
		x, err = m.Client.ExportBranch(ctx, agent, project, "", true)
	}
	if err != nil {
		m.notify(ctx, title, "failed: "+firstLine(err.Error()))
		return
	}
	m.notify(ctx, title, fmt.Sprintf("%s branch %s at %.12s in %s; your working tree and current branch are unchanged", x.Did(), x.Branch, x.Commit, x.Repo))
}

// unreachable shows that the engine does not answer.
func (m *Menu) unreachable(tray Tray, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tray.SetIcon(Icon(StateStopped))
	why := "not running"
	if err != nil {
		why = "not running (" + firstLine(err.Error()) + ")"
	}
	tray.SetTooltip("TheSystem: " + why)
	m.header.SetTitle("TheSystem — " + why)
}
