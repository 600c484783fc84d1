// Package atomicfile writes files so that a reader sees the old content or
// the new, never half of either.
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WritePrivate writes content to path with mode 0600, through a temporary
// file and a rename; the directory is created 0700 if missing.
func WritePrivate(path string, content []byte) error {
	return Write(path, content, 0o600)
}

// Write writes content to path with mode, atomically.
func Write(path string, content []byte, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, content, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, mode); err != nil { // WriteFile's mode is masked by umask
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
