package loginitem

import (
	"context"
	"fmt"
	"strings"
)

// Path is where the login item lives: the autostart entry in a desktop
// session, else the systemd --user unit.
func (o Options) Path() string {
	if o.Desktop {
		return AutostartPath(o.Home)
	}
	return UnitPath(o.Home)
}

// Enabled reports whether the login item is installed.
func (o Options) Enabled() (bool, error) { return exists(o.Path()), nil }

// SetEnabled installs or removes the login item; a systemd unit is also
// enabled or disabled (when systemd --user is there to ask).
func (o Options) SetEnabled(on bool) error {
	ctx := context.Background()
	if o.Desktop {
		if !on {
			return remove(o.Path())
		}
		return write(o.Path(), Autostart(o))
	}
	if !on {
		_, _ = o.run(ctx, "systemctl", "--user", "disable", "thesystem.service")
		return remove(o.Path())
	}
	if err := write(o.Path(), Unit(o)); err != nil {
		return err
	}
	if out, err := o.run(ctx, "systemctl", "--user", "enable", "thesystem.service"); err != nil {
		return fmt.Errorf("%s written, but `systemctl --user enable thesystem.service` failed (%w: %s): enable it in your session",
			o.Path(), err, strings.TrimSpace(string(out)))
	}
	return nil
}
