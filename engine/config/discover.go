package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Discover looks for thesystem.yaml in dir and its parents, up to and
// including the git root (the first directory holding .git). Outside a git
// repository only dir itself is searched, so a stray file higher up is
// never picked up by accident. It returns "" and no error when there is no
// file: the defaults apply.
func Discover(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("discover config: %w", err)
	}
	gitRoot := findGitRoot(dir)
	for {
		candidate := filepath.Join(dir, FileName)
		fi, err := os.Stat(candidate)
		switch {
		case err == nil && fi.Mode().IsRegular():
			return candidate, nil
		case err == nil:
			return "", fmt.Errorf("discover config: %s is not a regular file", candidate)
		case !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("discover config: %w", err)
		}
		if gitRoot == "" || dir == gitRoot {
			return "", nil
		}
		dir = filepath.Dir(dir)
	}
}

// findGitRoot returns the nearest directory at or above dir that holds a
// .git entry (a directory, or a file for worktrees), or "".
func findGitRoot(dir string) string {
	for {
		if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// ProjectDir is where relative paths resolve when no file was found: the
// git root if dir is inside a repository, else dir.
func ProjectDir(dir string) string {
	if root := findGitRoot(dir); root != "" {
		return root
	}
	return dir
}
