package component

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/thesystem-dev/thesystem/engine/config"
	"github.com/thesystem-dev/thesystem/engine/guest"
	"github.com/thesystem-dev/thesystem/engine/vm"
)

// TestAgentTokenDirs: each run of an agent gets a token dir of its own
// (no file cache in the VM can serve a revoked token), the earlier ones go,
// and podman is given the tier's path (here the VM's).
func TestAgentTokenDirs(t *testing.T) {
	state := t.TempDir()
	paths := config.Paths{StateDir: state, RuntimeDir: filepath.Join(state, "run")}
	guestFiles := &recordedFiles{}
	e := Env{Paths: paths, Layout: vm.Layout{AgentsDir: vm.GuestAgentsDir, OwnerUID: -1, OwnerGID: -1, Files: guestFiles}}
	first, err := e.writeAgentToken(t.Context(), "agent-1", "tsa_one", nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.writeAgentToken(t.Context(), "agent-1", "tsa_two", nil)
	if err != nil {
		t.Fatal(err)
	}
	if first == second || !strings.HasPrefix(second, vm.GuestAgentsDir+"/agent-1/") {
		t.Fatalf("token dirs %s then %s", first, second)
	}
	runs, _ := os.ReadDir(paths.AgentDir("agent-1"))
	if len(runs) != 1 || runs[0].Name() != filepath.Base(second) {
		t.Fatalf("left on the host: %v", runs)
	}
	b, err := os.ReadFile(filepath.Join(paths.AgentDir("agent-1"), runs[0].Name(), guest.TokenFile))
	if err != nil || string(b) != "tsa_two\n" {
		t.Fatalf("token file: %q %v", b, err)
	}
	// The VM's tier got the same files, in the dir podman mounts, the
	// earlier runs' to go; a rotated token replaces the file in place.
	if err := e.DeliverToken(t.Context(), "agent-1", "tsa_three"); err != nil {
		t.Fatal(err)
	}
	want := []string{first + " token=tsa_one only", second + " token=tsa_two only", second + " token=tsa_three"}
	if fmt.Sprint(guestFiles.calls) != fmt.Sprint(want) {
		t.Errorf("written into the guest:\n%q\nwant\n%q", guestFiles.calls, want)
	}
}

// recordedFiles is a tier's FileWriter that records what it was given.
type recordedFiles struct{ calls []string }

func (r *recordedFiles) WriteFiles(_ context.Context, dir string, files map[string][]byte, only bool) error {
	c := dir
	for _, name := range slices.Sorted(maps.Keys(files)) {
		c += " " + name + "=" + strings.TrimSpace(string(files[name]))
	}
	if only {
		c += " only"
	}
	r.calls = append(r.calls, c)
	return nil
}
