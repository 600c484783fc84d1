package menubar

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// NewDesktop is the macOS desktop: a native alert for keys, notifications
// and text through AppleScript, `open` for URLs and files.
func NewDesktop() Desktop { return macDesktop{} }

type macDesktop struct{}

// osascript runs an AppleScript whose arguments come in argv (never
// interpolated into the script).
func osascript(ctx context.Context, script string, args ...string) (string, error) {
	argv := []string{"-e", "on run argv", "-e", script, "-e", "end run"}
	out, err := exec.CommandContext(ctx, "/usr/bin/osascript", append(argv, args...)...).Output()
	return strings.TrimRight(string(out), "\n"), err
}

// Notify shows a notification (no secret is ever in one).
func (macDesktop) Notify(ctx context.Context, title, body string) error {
	_, err := osascript(ctx, "display notification (item 2 of argv) with title (item 1 of argv)", title, body)
	return err
}

// Open opens a URL or a file.
func (macDesktop) Open(ctx context.Context, target string) error {
	if out, err := exec.CommandContext(ctx, "/usr/bin/open", target).CombinedOutput(); err != nil {
		return fmt.Errorf("open %s: %w: %s", target, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Show shows text in a dialog.
func (macDesktop) Show(ctx context.Context, title, text string) error {
	_, err := osascript(ctx, `display dialog (item 2 of argv) with title (item 1 of argv) buttons {"OK"} default button "OK"`, title, text)
	return err
}
