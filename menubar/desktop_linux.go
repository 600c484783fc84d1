package menubar

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/godbus/dbus/v5"
)

// NewDesktop is the Linux desktop: dialogs with zenity or kdialog when
// present, notifications over D-Bus (org.freedesktop.Notifications),
// xdg-open for URLs and files.
func NewDesktop() Desktop {
	return &linuxDesktop{lookPath: exec.LookPath, bus: dbus.SessionBus}
}

type linuxDesktop struct {
	lookPath func(string) (string, error)
	bus      func() (*dbus.Conn, error)
}

// ErrNoDialog is returned when no dialog tool is installed: the key must
// then be set from a terminal.
var ErrNoDialog = errors.New("no dialog tool (zenity or kdialog) is installed: set the key from a terminal with `thesystem keys set <provider>`")

// AskSecret asks in a password dialog; the secret comes back on the
// tool's stdout, never on a command line.
func (d *linuxDesktop) AskSecret(ctx context.Context, title, prompt string) (string, bool, error) {
	var cmd *exec.Cmd
	if p, err := d.lookPath("zenity"); err == nil {
		cmd = exec.CommandContext(ctx, p, "--password", "--title", title)
	} else if p, err := d.lookPath("kdialog"); err == nil {
		cmd = exec.CommandContext(ctx, p, "--title", title, "--password", prompt)
	} else {
		return "", false, ErrNoDialog
	}
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return "", false, nil // cancelled
	}
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", cmd.Path, err)
	}
	return strings.TrimRight(string(out), "\r\n"), true, nil
}

// Confirm asks a yes/no question; no dialog tool means no.
func (d *linuxDesktop) Confirm(ctx context.Context, title, message, action string) (bool, error) {
	var cmd *exec.Cmd
	if p, err := d.lookPath("zenity"); err == nil {
		cmd = exec.CommandContext(ctx, p, "--question", "--no-markup", "--title", title, "--text", message, "--ok-label", action)
	} else if p, err := d.lookPath("kdialog"); err == nil {
		cmd = exec.CommandContext(ctx, p, "--title", title, "--warningyesno", message, "--yes-label", action)
	} else {
		return false, errors.New("no dialog tool (zenity or kdialog) is installed: do it from a terminal (`thesystem " + strings.ToLower(action) + "`)")
	}
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return false, nil // answered no
	}
	return err == nil, err
}

// Notify shows a desktop notification.
func (d *linuxDesktop) Notify(ctx context.Context, title, body string) error {
	conn, err := d.bus()
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	obj := conn.Object("org.freedesktop.Notifications", "/org/freedesktop/Notifications")
	call := obj.CallWithContext(ctx, "org.freedesktop.Notifications.Notify", 0,
		"TheSystem", uint32(0), "", title, body, []string{}, map[string]dbus.Variant{}, int32(-1))
	if call.Err != nil {
		return fmt.Errorf("notify: %w", call.Err)
	}
	return nil
}

// Open opens a URL or a file with the desktop's handler.
func (d *linuxDesktop) Open(ctx context.Context, target string) error {
	p, err := d.lookPath("xdg-open")
	if err != nil {
		return fmt.Errorf("open %s: xdg-open is not installed", target)
	}
	if out, err := exec.CommandContext(ctx, p, target).CombinedOutput(); err != nil {
		return fmt.Errorf("open %s: %w: %s", target, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Show shows text in a dialog, or as a notification without one.
func (d *linuxDesktop) Show(ctx context.Context, title, text string) error {
	if p, err := d.lookPath("zenity"); err == nil {
		return exec.CommandContext(ctx, p, "--info", "--no-markup", "--title", title, "--text", text).Run()
	}
	if p, err := d.lookPath("kdialog"); err == nil {
		return exec.CommandContext(ctx, p, "--title", title, "--msgbox", text).Run()
	}
	return d.Notify(ctx, title, text)
}
