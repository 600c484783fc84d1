// Package atomicfile writes files so that a reader sees the old content or
// the new, never half of either, and a crash leaves one of the two.
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
	return WriteOwned(path, content, mode, -1, -1)
}

// WriteOwned writes content to path with mode and owner uid:gid (-1
// keeps this process's), atomically: a temporary file of a unique name in
// the same directory, synced, given its mode and owner before it is
// renamed over path (a reader never sees it otherwise), then the directory
// synced.
func WriteOwned(path string, content []byte, mode fs.FileMode, uid, gid int) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if _, err := f.Write(content); err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if uid >= 0 || gid >= 0 {
		if err := f.Chown(uid, gid); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
