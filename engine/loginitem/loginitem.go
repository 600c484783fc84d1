// Package loginitem starts TheSystem when the user logs in: a LaunchAgent
// on macOS (restarted only after a crash), an XDG autostart entry in a
// Linux desktop session, a systemd --user unit on a headless Linux. The
// files are generated here, shared and tested on Linux; only installing
// them (launchctl, systemctl) is per platform.
package loginitem

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Label is the LaunchAgent's label and the bundle id.
const Label = "dev.thesystem.TheSystem"

// Options say what to start and where the user's files are.
type Options struct {
	// Executable is the app's binary (TheSystem.app/Contents/MacOS/TheSystem,
	// or thesystem).
	Executable string
	// Config is the project's thesystem.yaml ("" for none).
	Config string
	// StartStack also starts the stack at login, not only the app.
	StartStack bool
	Home       string
	// Desktop is a graphical session (Linux: XDG autostart, else systemd).
	Desktop bool
	// Run runs launchctl/systemctl; nil runs them for real.
	Run func(ctx context.Context, name string, args ...string) ([]byte, error)
	UID int
}

func (o Options) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if o.Run != nil {
		return o.Run(ctx, name, args...)
	}
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}

// args is what the login starts: the menu-bar app (app mode), with the
// stack when asked.
func (o Options) args() []string {
	return o.command("app")
}

func (o Options) command(cmd string) []string {
	a := []string{o.Executable, cmd}
	if o.Config != "" {
		a = append(a, "--config", o.Config)
	}
	if o.StartStack {
		a = append(a, "--start")
	}
	return a
}

// LaunchAgentPath is the macOS LaunchAgent's plist.
func LaunchAgentPath(home string) string {
	return filepath.Join(home, "Library", "LaunchAgents", Label+".plist")
}

// LaunchAgent is the plist: the app at load, kept alive only after a
// crash (a Quit from the menu stays quit).
func LaunchAgent(o Options, logFile string) []byte {
	var b bytes.Buffer
	str := func(s string) string {
		var e bytes.Buffer
		_ = xml.EscapeText(&e, []byte(s))
		return "<string>" + e.String() + "</string>"
	}
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	` + str(Label) + `
	<key>ProgramArguments</key>
	<array>
`)
	for _, a := range o.args() {
		b.WriteString("\t\t" + str(a) + "\n")
	}
	b.WriteString(`	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
	</dict>
	<key>ProcessType</key>
	<string>Interactive</string>
	<key>StandardErrorPath</key>
	` + str(logFile) + `
</dict>
</plist>
`)
	return b.Bytes()
}

// AutostartPath is the XDG autostart entry.
func AutostartPath(home string) string {
	return filepath.Join(home, ".config", "autostart", "thesystem.desktop")
}

// Autostart is the XDG autostart entry: the app (tray menu) at login.
func Autostart(o Options) []byte {
	return []byte("[Desktop Entry]\nType=Application\nName=TheSystem\nComment=A team of AI coding agents, safely\n" +
		"Exec=" + execLine(o.args()) + "\nTerminal=false\nX-GNOME-Autostart-enabled=true\n")
}

// UnitPath is the systemd --user unit.
func UnitPath(home string) string {
	return filepath.Join(home, ".config", "systemd", "user", "thesystem.service")
}

// Unit is the systemd --user unit for a headless login: the engine
// daemon, restarted only after a crash.
func Unit(o Options) []byte {
	return []byte("[Unit]\nDescription=TheSystem engine\n\n[Service]\nExecStart=" + execLine(o.command("daemon")) +
		"\nRestart=on-failure\n\n[Install]\nWantedBy=default.target\n")
}

// execLine quotes arguments for a desktop entry's Exec= and a unit's
// ExecStart= (both take double-quoted words).
func execLine(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t\"\\$`'") {
			a = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(a) + `"`
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// write writes a file and its dirs, user-only.
func write(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("login item: %w", err)
	}
	return nil
}

// remove removes a login item's file; one already gone is fine.
func remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("login item: %w", err)
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
