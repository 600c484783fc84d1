package config

import "path/filepath"

// defaultStateDir on macOS is ~/Library/Application Support/TheSystem.
func defaultStateDir(_ func(string) string, home string) string {
	return filepath.Join(home, "Library", "Application Support", "TheSystem")
}
