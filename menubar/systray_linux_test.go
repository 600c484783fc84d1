// fyne.io/systray v1.12.2 has a data race of its own on Linux (GetLayout
// reads the menu version that its refresh writes under another lock), so
// the race detector fails any test that reads the menu: this one runs
// without it (make unit runs it separately).

//go:build !race

package menubar_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/thesystem-dev/thesystem/engine"
	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/menubar"
)

// watcher plays the desktop's StatusNotifierWatcher: it learns the bus
// name of the status item that registers.
type watcher struct{ registered chan string }

func (w *watcher) RegisterStatusNotifierItem(sender dbus.Sender, _ string) *dbus.Error {
	select {
	case w.registered <- string(sender):
	default:
	}
	return nil
}

// desktop records what the menu asks of the platform (dialogs and
// notifications are the desktop's, a boundary we do not run here).
type desktop struct {
	mu       sync.Mutex
	secret   string
	notified []string
	opened   []string
	shown    []string
}

func (d *desktop) AskSecret(context.Context, string, string) (string, bool, error) {
	return d.secret, true, nil
}

func (d *desktop) Confirm(context.Context, string, string, string) (bool, error) { return false, nil }

func (d *desktop) Notify(_ context.Context, title, body string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.notified = append(d.notified, title+": "+body)
	return nil
}

func (d *desktop) Open(_ context.Context, target string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.opened = append(d.opened, target)
	return nil
}

func (d *desktop) Show(_ context.Context, title, text string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.shown = append(d.shown, title+"\n"+text)
	return nil
}

func (d *desktop) all() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.notified, "\n") + "\n" + strings.Join(d.opened, "\n") + "\n" + strings.Join(d.shown, "\n")
}

type loginItem struct {
	mu sync.Mutex
	on bool
}

func (l *loginItem) Enabled() (bool, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.on, nil }
func (l *loginItem) SetEnabled(on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.on = on
	return nil
}

// menuItem is one entry of the menu as D-Bus shows it.
type menuItem struct {
	id       int32
	label    string
	enabled  bool
	toggle   int32
	children []menuItem
}

func parseLayout(v []any) menuItem {
	it := menuItem{id: v[0].(int32), enabled: true}
	props := v[1].(map[string]dbus.Variant)
	if l, ok := props["label"]; ok {
		it.label, _ = l.Value().(string)
	}
	if e, ok := props["enabled"]; ok {
		it.enabled, _ = e.Value().(bool)
	}
	if ts, ok := props["toggle-state"]; ok {
		it.toggle, _ = ts.Value().(int32)
	}
	for _, c := range v[2].([]dbus.Variant) {
		it.children = append(it.children, parseLayout(c.Value().([]any)))
	}
	return it
}

func (it menuItem) find(label string) (menuItem, bool) {
	if it.label == label || strings.HasPrefix(it.label, label+" —") {
		return it, true
	}
	for _, c := range it.children {
		if f, ok := c.find(label); ok {
			return f, true
		}
	}
	return menuItem{}, false
}

// TestMenuOverDBus runs the real menu (fyne.io/systray's
// StatusNotifierItem and com.canonical.dbusmenu on a private session bus)
// against a real engine and its local API: the test reads the menu like a
// desktop shell does, clicks its items, and checks the engine reacted and
// the icon's tooltip follows the stack, a failure included.
func TestMenuOverDBus(t *testing.T) {
	w := &watcher{registered: make(chan string, 1)}
	conn := menubar.ServeOnSessionBus(t, "org.kde.StatusNotifierWatcher", "/StatusNotifierWatcher", w)

	// A real engine (the proxy only: no container tier) behind its local API.
	port := freePort(t)
	dir := t.TempDir()
	// The provider: every answer costs 100 tokens in, 20 out.
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"m","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":100,"output_tokens":20}}`)
	}))
	defer fake.Close()
	l, err := config.Parse("thesystem.yaml", []byte(fmt.Sprintf("proxy:\n  port: %d\n  upstreams:\n    anthropic: %s\n", port, fake.URL)), dir,
		config.Options{LookupEnv: func(string) (string, bool) { return "", false }, Home: dir})
	if err != nil {
		t.Fatal(err)
	}
	paths := config.Paths{StateDir: filepath.Join(dir, "state"), RuntimeDir: filepath.Join(dir, "run")}
	eng, err := engine.New(engine.Options{Config: l, Paths: paths, KeyService: fmt.Sprintf("thesystem-menu-test-%d", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv := &api.Server{Backend: eng, Socket: paths.APISocket(), UID: -1}
	go func() { _ = srv.Serve(ctx) }()
	defer func() { _ = eng.Stop(context.Background()) }()
	client := &api.Client{Socket: paths.APISocket()}

	const planted = "sk-ant-api03-PLANTEDmenuKEY0123456789abcdefgh"
	d := &desktop{secret: planted}
	login := &loginItem{}
	m := &menubar.Menu{Client: client, Desktop: d, Login: login, Providers: []string{"anthropic", "openai"},
		LogFile: paths.DaemonLog(), Quit: cancel}
	done := make(chan error, 1)
	go func() { done <- menubar.RunSystray(ctx, m) }()

	var sender string
	select {
	case sender = <-w.registered:
	case <-time.After(20 * time.Second):
		t.Fatal("the status item never registered with the watcher")
	}
	menuObj := conn.Object(sender, "/StatusNotifierItem/menu")
	itemObj := conn.Object(sender, "/StatusNotifierItem")
	layout := func() menuItem {
		t.Helper()
		var rev uint32
		var root []any
		call := menuObj.Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{})
		if call.Err != nil {
			t.Fatalf("GetLayout: %v", call.Err)
		}
		var raw struct {
			V0 int32
			V1 map[string]dbus.Variant
			V2 []dbus.Variant
		}
		if err := call.Store(&rev, &raw); err != nil {
			t.Fatal(err)
		}
		root = []any{raw.V0, raw.V1, raw.V2}
		return parseLayout(root)
	}
	click := func(path ...string) {
		t.Helper()
		it := layout()
		for _, p := range path {
			var ok bool
			if it, ok = it.find(p); !ok {
				t.Fatalf("no %q in the menu", p)
			}
		}
		if call := menuObj.Call("com.canonical.dbusmenu.Event", 0, it.id, "clicked", dbus.MakeVariant(""), uint32(0)); call.Err != nil {
			t.Fatalf("click %v: %v", path, call.Err)
		}
	}
	tooltip := func() string {
		v, err := itemObj.GetProperty("org.kde.StatusNotifierItem.ToolTip")
		if err != nil {
			t.Fatal(err)
		}
		var tip struct {
			V0 string
			V1 []struct {
				V0, V1 int32
				V2     []byte
			}
			V2, V3 string
		}
		if err := dbus.Store([]any{v.Value()}, &tip); err != nil {
			t.Fatal(err)
		}
		return tip.V2
	}
	icon := func() string {
		v, err := itemObj.GetProperty("org.kde.StatusNotifierItem.IconPixmap")
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(v.Value())
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: menu %+v, tooltip %q, desktop %s", what, layout(), tooltip(), d.all())
			}
		}
	}

	// The menu as a desktop shell reads it, once it is built.
	waitFor("the menu built", func() bool { _, ok := layout().find("Quit"); return ok })
	for _, want := range []string{"TheSystem", "agentauth-proxy", "vm", "Start", "Stop", "Restart component", "Open Dashboard",
		"Set API Key", "Show Logs", "Launch at Login", "Doctor", "Quit"} {
		if _, ok := layout().find(want); !ok && !strings.Contains(fmt.Sprint(layout()), want) {
			t.Errorf("the menu lacks %q: %+v", want, layout())
		}
	}
	stoppedIcon := icon()

	// Start: the engine starts, the icon and the component's line follow.
	click("Start")
	waitFor("healthy after Start", func() bool {
		st, err := client.Status(ctx)
		return err == nil && menubar.Overall(st) == menubar.StateHealthy && strings.Contains(tooltip(), "healthy")
	})
	if it, _ := layout().find("● agentauth-proxy"); it.label != "● agentauth-proxy — healthy" {
		t.Errorf("the proxy's line: %+v", layout())
	}
	healthyIcon := icon()
	if healthyIcon == stoppedIcon {
		t.Error("the icon did not change from stopped to healthy")
	}

	// A key typed into the dialog reaches the engine (hot-swapped), and
	// only its fingerprint is shown.
	click("Set API Key", "anthropic")
	waitFor("the key stored", func() bool { return strings.Contains(d.all(), "API key stored: anthropic key") })
	keys, err := client.Keys(ctx)
	if err != nil || len(keys) != 1 || keys[0].Provider != "anthropic" {
		t.Fatalf("keys after the dialog: %+v %v", keys, err)
	}
	if strings.Contains(d.all(), "PLANTED") {
		t.Fatal("the key was shown back")
	}

	// Spending through the proxy (the user's own token) shows on the
	// Today line, priced from the table.
	if it, _ := layout().find("Today: nothing spent yet"); it.label == "" {
		t.Errorf("no Today line: %+v", layout())
	}
	userToken, err := os.ReadFile(paths.UserTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/anthropic/v1/messages", port),
		strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":1,"messages":[]}`))
	req.Header.Set("X-Api-Key", strings.TrimSpace(string(userToken)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	// (100×3 + 20×15) / 1e6 = $0.0006.
	waitFor("the Today line", func() bool { _, ok := layout().find("Today: $0.0006 (120 tokens)"); return ok })

	click("Launch at Login")
	waitFor("the login item on", func() bool { on, _ := login.Enabled(); return on })
	waitFor("the checkbox checked", func() bool { it, _ := layout().find("Launch at Login"); return it.toggle == 1 })

	click("Open Dashboard")
	click("Doctor")
	waitFor("dashboard opened and doctor shown", func() bool {
		a := d.all()
		return strings.Contains(a, "dashboard.html") && strings.Contains(a, "TheSystem Doctor") && strings.Contains(a, "config")
	})

	// Stop: the engine stops.
	click("Stop")
	waitFor("stopped after Stop", func() bool {
		st, err := client.Status(ctx)
		return err == nil && !st.Running && strings.Contains(tooltip(), "stopped")
	})

	// A failure: the proxy's port is taken, Start fails; the icon and the
	// tooltip say so, with the error, and a notification tells it.
	var lc net.ListenConfig
	busy, err := lc.Listen(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	click("Start")
	waitFor("failed", func() bool {
		return strings.Contains(tooltip(), "failed") && strings.Contains(tooltip(), "agentauth-proxy")
	})
	if icon() == healthyIcon || icon() == stoppedIcon {
		t.Error("the icon does not show the failure")
	}
	if it, ok := layout().find("✕ agentauth-proxy"); !ok || !strings.HasSuffix(it.label, "failed") {
		t.Errorf("the proxy's line after the failure: %+v", layout())
	}
	waitFor("a notification", func() bool { return strings.Contains(d.all(), "failed") })

	click("Quit")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Quit did not end the menu")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
