//go:build !darwin

package config

import "path/filepath"

// defaultStateDir off macOS is $XDG_STATE_HOME/thesystem, or
// ~/.local/state/thesystem when XDG_STATE_HOME is unset.
func defaultStateDir(get func(string) string, home string) string {
	if xdg := get("XDG_STATE_HOME"); xdg != "" {
		return filepath.Join(xdg, "thesystem")
	}
	return filepath.Join(home, ".local", "state", "thesystem")
}
