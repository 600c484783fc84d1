package menubar

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
)

// fakeTray records what the menu shows (the real one is tested over D-Bus
// in systray_linux_test.go).
type fakeTray struct {
	mu      sync.Mutex
	tooltip string
	items   map[string]*fakeItem
}

type fakeItem struct {
	t       *fakeTray
	title   string
	tooltip string
	clicked chan struct{}
	checked bool
}

func (t *fakeTray) add(title string) *fakeItem {
	t.mu.Lock()
	defer t.mu.Unlock()
	it := &fakeItem{t: t, title: title, clicked: make(chan struct{}, 1)}
	t.items[fmt.Sprint(len(t.items))] = it
	return it
}
func (t *fakeTray) SetIcon([]byte)               {}
func (t *fakeTray) SetTooltip(s string)          { t.mu.Lock(); t.tooltip = s; t.mu.Unlock() }
func (t *fakeTray) AddItem(title, _ string) Item { return t.add(title) }
func (t *fakeTray) AddCheckbox(title, _ string, checked bool) Item {
	it := t.add(title)
	it.checked = checked
	return it
}
func (t *fakeTray) AddSeparator()               {}
func (i *fakeItem) SetTitle(s string)           { i.t.mu.Lock(); i.title = s; i.t.mu.Unlock() }
func (i *fakeItem) SetTooltip(s string)         { i.t.mu.Lock(); i.tooltip = s; i.t.mu.Unlock() }
func (i *fakeItem) Enable()                     {}
func (i *fakeItem) Disable()                    {}
func (i *fakeItem) Show()                       {}
func (i *fakeItem) Hide()                       {}
func (i *fakeItem) Check()                      { i.t.mu.Lock(); i.checked = true; i.t.mu.Unlock() }
func (i *fakeItem) Uncheck()                    { i.t.mu.Lock(); i.checked = false; i.t.mu.Unlock() }
func (i *fakeItem) Checked() bool               { i.t.mu.Lock(); defer i.t.mu.Unlock(); return i.checked }
func (i *fakeItem) AddSub(title, _ string) Item { return i.t.add(title) }
func (i *fakeItem) Clicked() <-chan struct{}    { return i.clicked }

func (t *fakeTray) titles() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	for _, it := range t.items {
		b.WriteString(it.title + "\n")
	}
	return b.String()
}

// feed is a Client whose events are the statuses sent on it.
type feed struct {
	statuses  chan api.Status
	mu        sync.Mutex
	destroyed int
	exports   []string
}

func (f *feed) Status(context.Context) (api.Status, error) { return api.Status{}, nil }
func (f *feed) Events(ctx context.Context, fn func(api.Status) bool) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case st := <-f.statuses:
			fn(st)
		}
	}
}
func (f *feed) Start(context.Context) error           { return nil }
func (f *feed) Stop(context.Context) error            { return nil }
func (f *feed) Restart(context.Context, string) error { return nil }
func (f *feed) SetKey(context.Context, string, string) (api.KeyInfo, error) {
	return api.KeyInfo{}, nil
}
func (f *feed) Doctor(context.Context) ([]api.Check, error) { return nil, nil }
func (f *feed) Dashboard(context.Context) (api.Dashboard, error) {
	return api.Dashboard{URL: "http://127.0.0.1:3000/?key=k", Page: "/run/dashboard.html"}, nil
}
func (f *feed) AgentDiff(_ context.Context, agent string) (string, error) {
	return "Branch thesystem/" + agent + ", since abc:\n proof.txt | 1 +", nil
}

// ExportBranch: the branch exists until asked to overwrite it.
func (f *feed) ExportBranch(_ context.Context, agent, dir, branch string, force bool) (api.Exported, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exports = append(f.exports, fmt.Sprintf("%s %s %q %v", agent, dir, branch, force))
	if !force {
		return api.Exported{}, &api.BranchExistsError{Branch: "thesystem/" + agent, Repo: dir}
	}
	return api.Exported{Branch: "thesystem/" + agent, Commit: "0123456789abcdef", Repo: dir}, nil
}
func (f *feed) Destroy(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.destroyed++
	return nil
}

type notes struct {
	mu      sync.Mutex
	got     []string
	confirm bool
}

func (n *notes) AskSecret(context.Context, string, string) (string, bool, error) {
	return "", false, nil
}
func (n *notes) Notify(_ context.Context, title, body string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, title+": "+body)
	return nil
}
func (n *notes) Open(context.Context, string) error { return nil }
func (n *notes) Confirm(_ context.Context, title, _, action string) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, "asked: "+title+" ["+action+"]")
	return n.confirm, nil
}
func (n *notes) Show(_ context.Context, title, text string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, "shown: "+title+": "+text)
	return nil
}
func (n *notes) all() string { n.mu.Lock(); defer n.mu.Unlock(); return strings.Join(n.got, "\n") }

// TestMenuFollowsStatus: agents appear under Agents as the swarm grows,
// a component that fails is notified once, a spent budget is notified.
func TestMenuFollowsStatus(t *testing.T) {
	tray := &fakeTray{items: map[string]*fakeItem{}}
	f := &feed{statuses: make(chan api.Status)}
	n := &notes{}
	m := &Menu{Client: f, Desktop: n}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go m.Run(ctx, tray)
	send := func(cs ...api.Component) { f.statuses <- api.Status{Components: cs} }
	proxy := api.Component{Name: api.ComponentProxy, State: api.StateHealthy}
	send(proxy, api.Component{Name: "agent-1", State: api.StateHealthy})
	send(proxy, api.Component{Name: "agent-1", State: api.StateFailed, LastError: "container exited with status 1"},
		api.Component{Name: "agent-2", State: api.StateStarting})
	send(proxy, api.Component{Name: "agent-1", State: api.StateFailed, LastError: "container exited with status 1"},
		api.Component{Name: "agent-2", State: api.StateHealthy})
	spent := proxy
	spent.Detail = "agent agent-2 has spent its budget: 10 of 10 requests in 24h0m0s; it resets at 12:00"
	send(spent, api.Component{Name: "agent-2", State: api.StateHealthy})
	send(spent, api.Component{Name: "agent-2", State: api.StateHealthy})
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(n.all(), "out of budget") || !strings.Contains(n.all(), "agent-1 failed"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("notifications: %s", n.all())
		}
	}
	titles := tray.titles()
	for _, want := range []string{"✕ agent-1 — failed", "● agent-2 — healthy", "agent-1\n", "agent-2\n"} {
		if !strings.Contains(titles, want) {
			t.Errorf("menu lacks %q:\n%s", want, titles)
		}
	}
	all := n.all()
	if strings.Count(all, "agent-1 failed: container exited with status 1") != 1 || strings.Count(all, "An agent ran out of budget: agent agent-2 has spent") != 1 {
		t.Errorf("notifications:\n%s", all)
	}
}

// TestDestroyAsksFirst: Destroy… asks, and only a yes destroys.
func TestDestroyAsksFirst(t *testing.T) {
	tray := &fakeTray{items: map[string]*fakeItem{}}
	f := &feed{statuses: make(chan api.Status)}
	n := &notes{}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go (&Menu{Client: f, Desktop: n}).Run(ctx, tray)
	var item *fakeItem
	for deadline := time.Now().Add(5 * time.Second); item == nil; time.Sleep(10 * time.Millisecond) {
		tray.mu.Lock()
		for _, it := range tray.items {
			if it.title == "Destroy…" {
				item = it
			}
		}
		tray.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("no Destroy… item")
		}
	}
	destroyed := func() int { f.mu.Lock(); defer f.mu.Unlock(); return f.destroyed }
	item.clicked <- struct{}{} // answered no
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(n.all(), "asked: Destroy the stack? [Destroy]"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not asked")
		}
	}
	time.Sleep(50 * time.Millisecond)
	if destroyed() != 0 {
		t.Fatal("destroyed without a yes")
	}
	n.mu.Lock()
	n.confirm = true
	n.mu.Unlock()
	item.clicked <- struct{}{}
	for deadline := time.Now().Add(5 * time.Second); destroyed() != 1 || !strings.Contains(n.all(), "Destroyed: Start rebuilds"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("destroyed %d times; %s", destroyed(), n.all())
		}
	}
}

// TestAgentWorkAndActions: an agent's line says what it does (working,
// needs you, with the task in its tooltip); Show Changes shows its diff;
// Export Branch puts its branch in the project, asking before it
// overwrites a branch of that name.
func TestAgentWorkAndActions(t *testing.T) {
	tray := &fakeTray{items: map[string]*fakeItem{}}
	f := &feed{statuses: make(chan api.Status)}
	n := &notes{confirm: true}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go (&Menu{Client: f, Desktop: n}).Run(ctx, tray)
	agent := api.Component{Name: "agent-1", State: api.StateHealthy}
	f.statuses <- api.Status{Project: "/home/u/project", Components: []api.Component{agent},
		Agents: []api.Agent{{Name: "agent-1", Work: "working", Task: "add a test", Queued: 2}}}
	find := func(title string) *fakeItem {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			tray.mu.Lock()
			for _, it := range tray.items {
				if it.title == title {
					tray.mu.Unlock()
					return it
				}
			}
			tray.mu.Unlock()
			if time.Now().After(deadline) {
				t.Fatalf("no item %q in:\n%s", title, tray.titles())
			}
		}
	}
	it := find("● agent-1 — working")
	tray.mu.Lock()
	tip := it.tooltip
	tray.mu.Unlock()
	if !strings.HasPrefix(tip, `working on "add a test" since `) || !strings.HasSuffix(tip, ", 2 queued") {
		t.Errorf("tooltip %q", tip)
	}
	f.statuses <- api.Status{Project: "/home/u/project", Components: []api.Component{agent},
		Agents: []api.Agent{{Name: "agent-1", Work: "needs you", Task: "its budget at the proxy is spent"}}}
	find("▲ agent-1 — needs you")

	// Past 80% of its budget: one warning for the period, however many
	// changes follow.
	near := api.Status{Project: "/home/u/project", Components: []api.Component{agent}, Today: &api.UsageRow{TokensIn: 8500},
		Agents: []api.Agent{{Name: "agent-1", Work: "idle", Today: &api.UsageRow{TokensIn: 8500},
			Budget: &api.BudgetLeft{Tokens: 10000, UsedTokens: 8500, Resets: time.Now().Add(time.Hour)}}}}
	f.statuses <- near
	f.statuses <- near
	find("Today: 8.5k tokens (no price for their models)")
	find("● agent-1 — idle · 8.5k tokens today")
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(n.all(), "agent-1 is near its budget"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no budget warning: %s", n.all())
		}
	}
	if c := strings.Count(n.all(), "agent-1 is near its budget"); c != 1 {
		t.Errorf("%d budget warnings, want 1", c)
	}

	find("Show Changes").clicked <- struct{}{}
	find("Export Branch").clicked <- struct{}{}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(n.all(), "created branch"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("notes: %s", n.all())
		}
	}
	all := n.all()
	for _, want := range []string{"shown: Changes of agent-1: Branch thesystem/agent-1, since abc:\n proof.txt | 1 +",
		"asked: Export agent-1's branch [Overwrite]",
		"Export agent-1's branch: created branch thesystem/agent-1 at 0123456789ab in /home/u/project; your working tree and current branch are unchanged"} {
		if !strings.Contains(all, want) {
			t.Errorf("notes lack %q:\n%s", want, all)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.Join(f.exports, "|") != `agent-1 /home/u/project "" false|agent-1 /home/u/project "" true` {
		t.Errorf("exports: %q", f.exports)
	}
}
