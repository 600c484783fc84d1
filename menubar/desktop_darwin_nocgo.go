//go:build darwin && !cgo

package menubar

import (
	"context"
	"errors"
	"os/exec"
)

// AskSecret asks in a dialog with a hidden answer (this build has no
// AppKit); the key comes back on osascript's stdout, never on a command
// line.
func (macDesktop) AskSecret(ctx context.Context, title, prompt string) (string, bool, error) {
	out, err := osascript(ctx, `text returned of (display dialog (item 2 of argv) with title (item 1 of argv) default answer "" with hidden answer buttons {"Cancel", "Save"} default button "Save")`, title, prompt)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return "", false, nil // cancelled
	}
	return out, err == nil, err
}

// Confirm asks in a dialog whose default button is the action.
func (macDesktop) Confirm(ctx context.Context, title, message, action string) (bool, error) {
	_, err := osascript(ctx, `display dialog (item 2 of argv) with title (item 1 of argv) buttons {"Cancel", item 3 of argv} default button 2 with icon caution`, title, message, action)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return false, nil // cancelled
	}
	return err == nil, err
}
