package compat

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	m := Default("1.2.3")
	for _, tc := range []struct {
		name, component, version string
		ok, blocking             bool
		problem, suggestion      string
	}{
		{"agentchat lowest", "agentchat", "0.22.0", true, false, "", ""},
		{"agentchat with v", "agentchat", "v0.30.1", true, false, "", ""},
		{"agentchat too old", "agentchat", "0.21.9", false, true,
			"version 0.21.9 is outside >=0.22.0 <1.0.0",
			"install a compatible version: npm install -g '@tjamescouch/agentchat@>=0.22.0 <1.0.0', or use the embedded agentchat"},
		{"agentchat too new", "agentchat", "1.0.0", false, true, "version 1.0.0 is outside", "npm install -g"},
		{"agentchat prerelease", "agentchat", "0.23.0-rc.1", false, true, "outside", ""},
		{"agentchat garbage", "agentchat", "latest", false, true, `version "latest" is not a semantic version`, "npm install"},
		{"agentctl-swarm ok", "agentctl-swarm", "0.4.0", true, false, "", ""},
		{"agentforce too new", "agentforce", "2.0.0", false, true, "outside >=0.1.0 <1.0.0", "@tjamescouch/agentforce"},
		{"claude-code ok", "claude-code", "2.1.330", true, false, "", ""},
		{"claude-code old", "claude-code", "1.0.128", false, true, "outside", "npm install -g '@anthropic-ai/claude-code@>=2.0.0 <3.0.0'"},
		{"claude-code missing", "claude-code", "", false, true, "not installed", "@anthropic-ai/claude-code"},
		{"guest exact", "thesystem-guest", "1.2.3", true, false, "", ""},
		{"guest skew", "thesystem-guest", "1.2.4", false, true, "outside =1.2.3", "thesystem reinstall"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := m.Check(tc.component, tc.version)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK != tc.ok || r.Blocking != tc.blocking {
				t.Errorf("ok=%v blocking=%v, want %v %v (%+v)", r.OK, r.Blocking, tc.ok, tc.blocking, r)
			}
			if !strings.Contains(r.Problem, tc.problem) || !strings.Contains(r.Suggestion, tc.suggestion) {
				t.Errorf("problem %q suggestion %q; want %q %q", r.Problem, r.Suggestion, tc.problem, tc.suggestion)
			}
			if r.OK && (r.Problem != "" || r.Suggestion != "") {
				t.Errorf("ok result carries advice: %+v", r)
			}
		})
	}
	if _, err := m.Check("nope", "1.0.0"); !errors.Is(err, ErrUnknownComponent) {
		t.Errorf("unknown component: %v", err)
	}
}

func TestCheckAll(t *testing.T) {
	m := Default("0.1.0")
	for _, tc := range []struct {
		name      string
		installed map[string]string
		want      map[string]Source // component → source; absent = skipped
		blocking  []string
	}{
		{"all embedded", nil,
			map[string]Source{"agentchat": SourceEmbedded, "agentctl-swarm": SourceEmbedded, "agentforce": SourceEmbedded, "thesystem-guest": SourceEmbedded},
			nil},
		{"upstream chat ok", map[string]string{"agentchat": "0.25.0", "claude-code": "2.0.1"},
			map[string]Source{"agentchat": SourceInstalled, "claude-code": SourceInstalled, "agentctl-swarm": SourceEmbedded, "agentforce": SourceEmbedded, "thesystem-guest": SourceEmbedded},
			nil},
		{"upstream chat too old and gro missing", map[string]string{"agentchat": "0.9.0", "gro": ""},
			map[string]Source{"agentchat": SourceInstalled, "gro": SourceMissing, "agentctl-swarm": SourceEmbedded, "agentforce": SourceEmbedded, "thesystem-guest": SourceEmbedded},
			[]string{"agentchat", "gro"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := m.CheckAll(tc.installed)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]Source{}
			for _, r := range rs {
				got[r.Component] = r.Source
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s: source %q, want %q", k, got[k], v)
				}
			}
			var blocking []string
			for _, r := range Blocking(rs) {
				blocking = append(blocking, r.Component)
			}
			if strings.Join(blocking, ",") != strings.Join(tc.blocking, ",") {
				t.Errorf("blocking %v, want %v", blocking, tc.blocking)
			}
		})
	}
	if _, err := m.CheckAll(map[string]string{"agentchatt": "1.0.0"}); !errors.Is(err, ErrUnknownComponent) {
		t.Errorf("typo in component: %v", err)
	}
}

// TestEmbeddedMatchesMatrix fails the build whose own embedded components
// fall outside its own matrix.
func TestEmbeddedMatchesMatrix(t *testing.T) {
	for _, self := range []string{"0.1.0", "dev"} {
		rs, err := Default(self).CheckAll(nil)
		if err != nil {
			t.Fatal(err)
		}
		if b := Blocking(rs); len(b) > 0 {
			t.Errorf("self=%s: embedded components blocked: %+v", self, b)
		}
	}
}

func TestSuggestEmbeddedBug(t *testing.T) {
	c := Component{Name: "agentchat", Package: "@tjamescouch/agentchat", Range: ">=9.0.0", Embedded: "0.22.0"}
	r := judge(c, c.Embedded, SourceEmbedded)
	if !r.Blocking || !strings.Contains(r.Suggestion, "embedded agentchat does not match") {
		t.Errorf("got %+v", r)
	}
	bad := judge(Component{Name: "x", Range: "not a range"}, "1.0.0", SourceInstalled)
	if !bad.Blocking || !strings.Contains(bad.Problem, "invalid range") {
		t.Errorf("got %+v", bad)
	}
}
