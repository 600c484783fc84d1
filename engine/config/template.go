package config

import (
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// defaultFile is the commented thesystem.yaml that `thesystem init` writes.
// A test checks that it parses to exactly Default().
//
//go:embed default.yaml
var defaultFile []byte

// Template returns the commented default configuration file.
func Template() []byte {
	return append([]byte(nil), defaultFile...)
}

// ErrExists is returned by WriteDefault when the file is already there and
// force is false.
var ErrExists = errors.New("already exists")

// WriteDefault writes the commented default file at path. It never
// replaces an existing file unless force is set, and then it replaces it
// atomically (a crash leaves the old or the new file, never half of one).
func WriteDefault(path string, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s %w (use --force to overwrite it)", path, ErrExists)
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if _, err := f.Write(defaultFile); err != nil {
			_ = f.Close()
			_ = os.Remove(path)
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, defaultFile, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}
