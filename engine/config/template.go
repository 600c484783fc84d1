package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
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
	return WriteTemplate(path, defaultFile, force)
}

// WithBackend is the commented default file with swarm.backend set to
// backend (one of Backends).
func WithBackend(backend string) ([]byte, error) {
	if !slices.Contains(Backends(), backend) {
		return nil, fmt.Errorf("backend %q: one of %s", backend, strings.Join(Backends(), ", "))
	}
	const line = "\n  backend: " + BackendClaude + " "
	if !bytes.Contains(defaultFile, []byte(line)) {
		return nil, errors.New("the default file has no swarm.backend line")
	}
	pad := strings.Repeat(" ", max(len(BackendClaude)-len(backend), 0))
	return bytes.Replace(defaultFile, []byte(line), []byte("\n  backend: "+backend+pad+" "), 1), nil
}

// WriteTemplate writes content (a configuration file) at path, as
// WriteDefault does.
func WriteTemplate(path string, defaultFile []byte, force bool) error {
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
