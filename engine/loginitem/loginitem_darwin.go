package loginitem

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
)

// Path is where the login item lives.
func (o Options) Path() string { return LaunchAgentPath(o.Home) }

// Enabled reports whether the LaunchAgent is installed.
func (o Options) Enabled() (bool, error) { return exists(o.Path()), nil }

// SetEnabled installs (and loads) or removes (and unloads) the LaunchAgent.
func (o Options) SetEnabled(on bool) error {
	ctx := context.Background()
	domain := "gui/" + strconv.Itoa(o.UID)
	_, _ = o.run(ctx, "/bin/launchctl", "bootout", domain+"/"+Label) // loaded or not
	if !on {
		return remove(o.Path())
	}
	logFile := filepath.Join(o.Home, "Library", "Logs", "TheSystem.log")
	if err := write(o.Path(), LaunchAgent(o, logFile)); err != nil {
		return err
	}
	if out, err := o.run(ctx, "/bin/launchctl", "bootstrap", domain, o.Path()); err != nil {
		return fmt.Errorf("launchctl bootstrap %s: %w: %s", o.Path(), err, out)
	}
	return nil
}
