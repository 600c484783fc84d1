package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestGuestBinary: on macOS the containers' init is the bundle's linux
// build for the VM's architecture, found from the CLI link too.
func TestGuestBinary(t *testing.T) {
	root := t.TempDir()
	contents := filepath.Join(root, "TheSystem.app", "Contents")
	for _, d := range []string{"MacOS", "Resources/bin", "Resources/guest"} {
		if err := os.MkdirAll(filepath.Join(contents, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(contents, "MacOS", "TheSystem")
	if err := os.WriteFile(exe, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(contents, "Resources", "bin", "thesystem")
	if err := os.Symlink("../../MacOS/TheSystem", link); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(contents, "Resources", "guest", "thesystem-linux-arm64")
	for _, self := range []string{exe, link} {
		if got := filepath.Clean(guestBinaryFor("darwin", "arm64", self)); got != want {
			t.Errorf("from %s: %s, want %s", self, got, want)
		}
	}
	if got := guestBinaryFor("linux", "amd64", "/usr/bin/thesystem"); got != "/usr/bin/thesystem" {
		t.Errorf("linux: %s", got)
	}
}
