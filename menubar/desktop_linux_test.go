package menubar

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// notifications plays the desktop's notification server.
type notifications struct{ got chan string }

func (n *notifications) Notify(app string, _ uint32, _ string, summary, body string, _ []string, _ map[string]dbus.Variant, _ int32) (uint32, *dbus.Error) {
	n.got <- app + "|" + summary + "|" + body
	return 1, nil
}

// TestLinuxDesktop: the key dialog's answer comes back on the tool's
// stdout (a stand-in zenity that records its argv), cancel is not an
// error, no tool is a clear error; notifications reach the session bus's
// notification server.
func TestLinuxDesktop(t *testing.T) {
	dir := t.TempDir()
	const planted = "sk-ant-api03-PLANTEDdialogKEY0123456789abcdef"
	zenity := filepath.Join(dir, "zenity")
	script := "#!/bin/sh\necho \"$@\" >>" + filepath.Join(dir, "argv") + "\n[ -f " + filepath.Join(dir, "cancel") + " ] && exit 1\necho " + planted + "\n"
	if err := os.WriteFile(zenity, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	look := func(name string) (string, error) {
		if name == "zenity" {
			return zenity, nil
		}
		return "", exec.ErrNotFound
	}
	d := &linuxDesktop{lookPath: look, bus: dbus.SessionBus}
	key, ok, err := d.AskSecret(t.Context(), "Set the anthropic API key", "Paste it")
	if err != nil || !ok || key != planted {
		t.Fatalf("AskSecret = %q %v %v", key, ok, err)
	}
	if argv, _ := os.ReadFile(filepath.Join(dir, "argv")); strings.Contains(string(argv), "PLANTED") || !strings.Contains(string(argv), "--password") {
		t.Errorf("zenity argv: %s", argv)
	}
	_ = os.WriteFile(filepath.Join(dir, "cancel"), nil, 0o644)
	if key, ok, err := d.AskSecret(t.Context(), "t", "p"); err != nil || ok || key != "" {
		t.Errorf("cancelled: %q %v %v", key, ok, err)
	}
	if ok, err := d.Confirm(t.Context(), "Destroy the stack?", "sure?", "Destroy"); ok || err != nil {
		t.Errorf("confirm answered no: %v %v", ok, err)
	}
	_ = os.Remove(filepath.Join(dir, "cancel"))
	if ok, err := d.Confirm(t.Context(), "Destroy the stack?", "sure?", "Destroy"); !ok || err != nil {
		t.Errorf("confirm answered yes: %v %v", ok, err)
	}
	if argv, _ := os.ReadFile(filepath.Join(dir, "argv")); !strings.Contains(string(argv), "--question --no-markup --title Destroy the stack? --text sure? --ok-label Destroy") {
		t.Errorf("zenity argv: %s", argv)
	}
	none := &linuxDesktop{lookPath: func(string) (string, error) { return "", exec.ErrNotFound }, bus: dbus.SessionBus}
	if _, _, err := none.AskSecret(t.Context(), "t", "p"); !errors.Is(err, ErrNoDialog) {
		t.Errorf("no dialog tool: %v", err)
	}

	n := &notifications{got: make(chan string, 1)}
	ServeOnSessionBus(t, "org.freedesktop.Notifications", "/org/freedesktop/Notifications", n)
	if err := d.Notify(t.Context(), "agent-1 failed", "container exited with status 1"); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-n.got:
		if got != "TheSystem|agent-1 failed|container exited with status 1" {
			t.Errorf("notification %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification arrived")
	}
}
