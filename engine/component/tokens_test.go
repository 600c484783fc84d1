package component

import (
	"os"
	"path/filepath"
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
	e := Env{Paths: paths, Layout: vm.Layout{AgentsDir: vm.GuestShareDir + "/agents", OwnerUID: -1, OwnerGID: -1}}
	first, err := e.writeAgentToken("agent-1", "tsa_one", nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.writeAgentToken("agent-1", "tsa_two", nil)
	if err != nil {
		t.Fatal(err)
	}
	if first == second || !strings.HasPrefix(second, vm.GuestShareDir+"/agents/agent-1/") {
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
}
