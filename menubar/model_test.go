package menubar

import (
	"bytes"
	"image/png"
	"strings"
	"testing"

	"github.com/thesystem-dev/thesystem/engine/api"
)

func comps(states ...string) api.Status {
	var st api.Status
	for i, s := range states {
		st.Components = append(st.Components, api.Component{Name: []string{"agentauth-proxy", "vm", "agentchat-server", "agent-1"}[i], State: s})
	}
	return st
}

func TestOverall(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   api.Status
		want State
	}{
		{"nothing", api.Status{}, StateStopped},
		{"all stopped", comps("stopped", "stopped"), StateStopped},
		{"all healthy", comps("healthy", "healthy", "healthy"), StateHealthy},
		{"one starting", comps("healthy", "starting", "stopped"), StateStarting},
		{"one restarting", comps("healthy", "restarting", "healthy"), StateDegraded},
		{"half up", comps("healthy", "stopped"), StateDegraded},
		{"one failed wins", comps("healthy", "degraded", "failed"), StateFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Overall(tc.st); got != tc.want {
				t.Errorf("Overall = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestTooltipAndTitles(t *testing.T) {
	st := comps("healthy", "failed")
	st.Components[1].LastError = "VM thesystem-abc is broken (DEGRADED)\nmore"
	if tip := Tooltip(st); tip != "TheSystem: failed — vm failed: VM thesystem-abc is broken (DEGRADED)" {
		t.Errorf("tooltip %q", tip)
	}
	if got := ComponentTitle(st.Components[1]); got != "✕ vm — failed" {
		t.Errorf("title %q", got)
	}
	if got := ComponentTooltip(st.Components[1]); !strings.HasPrefix(got, "VM thesystem-abc") {
		t.Errorf("component tooltip %q", got)
	}
	if got := ComponentTitle(st.Components[0]); got != "● agentauth-proxy — healthy" {
		t.Errorf("title %q", got)
	}
}

// TestIcons: each state has its own icon, a valid 22×22 PNG.
func TestIcons(t *testing.T) {
	seen := map[string]State{}
	for _, s := range []State{StateStopped, StateStarting, StateHealthy, StateDegraded, StateFailed} {
		b := Icon(s)
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil || img.Bounds().Dx() != 22 || img.Bounds().Dy() != 22 {
			t.Fatalf("%s: %v %v", s, err, img.Bounds())
		}
		if other, dup := seen[string(b)]; dup {
			t.Errorf("%s and %s share an icon", s, other)
		}
		seen[string(b)] = s
	}
}
