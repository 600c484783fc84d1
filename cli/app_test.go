package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/thesystem-dev/thesystem/engine/api"
)

// TestLoginItemCommand: on, status, off, with the files where a Linux
// desktop session expects them and the project's config in the command.
func TestLoginItemCommand(t *testing.T) {
	dir := repo(t)
	write(t, filepath.Join(dir, "thesystem.yaml"), "swarm:\n  agents: 1\n")
	env := []string{"XDG_CURRENT_DESKTOP=test"}
	entry := filepath.Join(dir, ".config", "autostart", "thesystem.desktop")
	r := run(t, dir, env, "login-item", "on", "--start")
	if r.code != 0 || !strings.Contains(r.stdout, "login item on ("+entry+")") {
		t.Fatalf("on: %+v", r)
	}
	b, err := os.ReadFile(entry)
	if err != nil || !strings.Contains(string(b), "Exec="+binary+" app --config "+filepath.Join(dir, "thesystem.yaml")+" --start\n") {
		t.Fatalf("autostart entry: %s %v", b, err)
	}
	r = run(t, dir, env, "login-item", "status", "--json")
	var st struct {
		Enabled bool   `json:"enabled"`
		Path    string `json:"path"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || !st.Enabled || st.Path != entry {
		t.Fatalf("status: %+v", r)
	}
	if r := run(t, dir, env, "login-item", "off"); r.code != 0 || !strings.Contains(r.stdout, "login item off") {
		t.Fatalf("off: %+v", r)
	}
	if _, err := os.Stat(entry); err == nil {
		t.Error("entry left after off")
	}
	if r := run(t, dir, env, "login-item", "maybe"); r.code != 2 || !strings.Contains(r.stderr, `"maybe" is not one of on, off, status`) {
		t.Errorf("bad argument: %+v", r)
	}
}

// TestInstallCLI: from an app bundle the link points at the bundle's
// Resources/bin/thesystem; an existing file is not replaced without
// --force; an earlier link is.
func TestInstallCLI(t *testing.T) {
	root := t.TempDir()
	macos := filepath.Join(root, "TheSystem.app", "Contents", "MacOS")
	res := filepath.Join(root, "TheSystem.app", "Contents", "Resources", "bin")
	for _, d := range []string{macos, res} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(macos, "TheSystem")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../MacOS/TheSystem", filepath.Join(res, "thesystem")); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	install := func(args ...string) result {
		cmd := exec.CommandContext(t.Context(), exe, append([]string{"install-cli", "--dir", dest}, args...)...)
		cmd.Env = testEnv(root, nil)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		code := 0
		if err := cmd.Run(); err != nil {
			code = cmd.ProcessState.ExitCode()
		}
		return result{code, out.String(), errb.String()}
	}
	if r := install(); r.code != 0 || !strings.Contains(r.stderr, "is not on your PATH") {
		t.Fatalf("install-cli: %+v", r)
	}
	link := filepath.Join(dest, "thesystem")
	if target, err := os.Readlink(link); err != nil || target != filepath.Join(res, "thesystem") {
		t.Fatalf("link %s → %s (%v)", link, target, err)
	}
	if r := install(); r.code != 0 { // an earlier link is replaced
		t.Fatalf("again: %+v", r)
	}
	_ = os.Remove(link)
	write(t, link, "mine")
	if r := install(); r.code == 0 || !strings.Contains(r.stderr, "exists and is not a link") {
		t.Fatalf("over a file: %+v", r)
	}
	if r := install("--force"); r.code != 0 {
		t.Fatalf("--force: %+v", r)
	}
}

// sniWatcher plays the desktop's StatusNotifierWatcher.
type sniWatcher struct{ registered chan string }

func (w *sniWatcher) RegisterStatusNotifierItem(sender dbus.Sender, _ string) *dbus.Error {
	select {
	case w.registered <- string(sender):
	default:
	}
	return nil
}

// TestAppMode runs `thesystem app` as a process: the engine, its API and
// the tray menu in one; the CLI talks to it; the menu's Quit (clicked over
// D-Bus) stops the stack and ends the process.
func TestAppMode(t *testing.T) {
	env := keyringEnv(t)
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		t.Skip("no D-Bus session bus")
	}
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w := &sniWatcher{registered: make(chan string, 1)}
	if err := conn.Export(w, "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName("org.kde.StatusNotifierWatcher", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("watcher name: %v %v", reply, err)
	}
	defer func() { _, _ = conn.ReleaseName("org.kde.StatusNotifierWatcher") }()

	// The whole stack, as a user's app runs it (a stand-in runtime).
	env = append(env, podmanEnv(t)...)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "thesystem.yaml"), fmt.Sprintf("proxy:\n  port: %d\nserver:\n  port: %d\n  dashboard: %d\nswarm:\n  agents: 1\nchannels: ['#general']\n",
		freePort(t), freePort(t), freePort(t)))
	cmd := newCmd(t.Context(), dir, env, "app", "--start")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var sender string
	select {
	case sender = <-w.registered:
	case <-time.After(20 * time.Second):
		t.Fatalf("the app's tray item never registered:\n%s", out.String())
	}
	// The CLI sees the app's engine, started by --start.
	c := &api.Client{Socket: filepath.Join(envValue(env, "THESYSTEM_RUNTIME_DIR"), "api.sock")}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if st, err := c.Status(t.Context()); err == nil && allHealthy(st) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app's stack never came up:\n%s", out.String())
		}
	}
	if r := run(t, dir, env, "status"); r.code != 0 || !strings.Contains(r.stdout, "agentauth-proxy   healthy") {
		t.Fatalf("status through the app's API: %+v", r)
	}

	// Quit from the menu.
	menu := conn.Object(sender, "/StatusNotifierItem/menu")
	var quit int32 = -1
	for deadline := time.Now().Add(10 * time.Second); quit < 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var rev uint32
		var layout struct {
			V0 int32
			V1 map[string]dbus.Variant
			V2 []dbus.Variant
		}
		if err := menu.Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{}).Store(&rev, &layout); err != nil {
			t.Fatal(err)
		}
		for _, ch := range layout.V2 {
			it := ch.Value().([]any)
			if l, _ := it[1].(map[string]dbus.Variant)["label"].Value().(string); l == "Quit" {
				quit = it[0].(int32)
			}
		}
	}
	if quit < 0 {
		t.Fatal("no Quit in the menu")
	}
	// The app may leave the bus before its reply to the click is sent: Quit
	// closes its connection at once. The bus then answers NoReply for it.
	if call := menu.Call("com.canonical.dbusmenu.Event", 0, quit, "clicked", dbus.MakeVariant(""), uint32(0)); call.Err != nil && !isNoReply(call.Err) {
		t.Fatal(call.Err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("app exit: %v\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("Quit did not end the app:\n%s", out.String())
	}
	if _, err := c.Status(context.Background()); err == nil {
		t.Error("the API still answers after Quit")
	}
}

// isNoReply reports whether err is the bus's answer for a peer that left
// without replying.
func isNoReply(err error) bool {
	var de dbus.Error
	return errors.As(err, &de) && de.Name == "org.freedesktop.DBus.Error.NoReply"
}

// lockedBuffer is a buffer a process writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }
