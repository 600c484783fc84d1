package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/thesystem-dev/thesystem"

// pkg is what `go list -json` tells about one package.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// uiReachable is what cli and menubar may import from the engine: the local
// API (client and wire types), the small pure engine types, and the key
// store, which the CLI opens itself because `keys get` must never cross the
// API socket, and the web guard the chat and dashboard commands configure.
func uiReachable() []string {
	return []string{module + "/engine/api", module + "/engine/config", module + "/engine/compat", module + "/engine/provider", module + "/engine/secrets", module + "/engine/webguard"}
}

// checkImports returns every violation of the import direction rules.
func checkImports(pkgs []pkg) []string {
	var bad []string
	under := func(p, dir string) bool { return p == module+"/"+dir || strings.HasPrefix(p, module+"/"+dir+"/") }
	for _, p := range pkgs {
		switch {
		case under(p.ImportPath, "engine"):
			for _, d := range p.Deps {
				if under(d, "cli") || under(d, "menubar") || under(d, "app") {
					bad = append(bad, p.ImportPath+" depends on "+d)
				}
			}
		case under(p.ImportPath, "cli"), under(p.ImportPath, "menubar"):
			for _, d := range p.Imports {
				if under(d, "engine") && !slices.Contains(uiReachable(), d) {
					bad = append(bad, p.ImportPath+" imports "+d+" (only engine/api and small engine types)")
				}
				if under(d, "app") || (under(p.ImportPath, "cli") && under(d, "menubar")) || (under(p.ImportPath, "menubar") && under(d, "cli")) {
					bad = append(bad, p.ImportPath+" imports "+d)
				}
			}
		}
	}
	return bad
}

func TestImportDirection(t *testing.T) {
	for _, goos := range []string{"linux", "darwin"} {
		t.Run(goos, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), "go", "list", "-json", module+"/...")
			cmd.Dir = ".."
			cmd.Env = append(cmd.Environ(), "GOOS="+goos, "CGO_ENABLED=0")
			pkgs := goList(t, cmd)
			if len(pkgs) < 5 {
				t.Fatalf("go list found only %d packages", len(pkgs))
			}
			for _, v := range checkImports(pkgs) {
				t.Error(v)
			}
		})
	}
}

// TestCheckImportsCatches shows the checker fails on each kind of violation.
func TestCheckImportsCatches(t *testing.T) {
	m := func(s string) string { return module + "/" + s }
	for _, tc := range []struct {
		name string
		p    pkg
		bad  bool
	}{
		{"engine → cli", pkg{ImportPath: m("engine/proxy"), Deps: []string{m("cli")}}, true},
		{"engine → menubar indirectly", pkg{ImportPath: m("engine/api"), Deps: []string{m("engine/x"), m("menubar")}}, true},
		{"engine → app", pkg{ImportPath: m("engine"), Deps: []string{m("app")}}, true},
		{"cli → engine internals", pkg{ImportPath: m("cli"), Imports: []string{m("engine/proxy")}}, true},
		{"menubar → engine internals", pkg{ImportPath: m("menubar"), Imports: []string{m("engine/supervise")}}, true},
		{"cli → menubar", pkg{ImportPath: m("cli"), Imports: []string{m("menubar")}}, true},
		{"cli → api", pkg{ImportPath: m("cli"), Imports: []string{m("engine/api"), m("engine/config")}}, false},
		{"app → anything", pkg{ImportPath: m("app"), Imports: []string{m("engine/proxy"), m("cli")}}, false},
		{"engine → engine", pkg{ImportPath: m("engine/proxy"), Deps: []string{m("engine/secrets")}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkImports([]pkg{tc.p}); (len(got) > 0) != tc.bad {
				t.Errorf("violations %v, want bad=%v", got, tc.bad)
			}
		})
	}
}

func goList(t *testing.T, cmd *exec.Cmd) []pkg {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestInfoPlist: the bundle's plist is well-formed and keeps the app in
// the menu bar only.
func TestInfoPlist(t *testing.T) {
	data, err := os.ReadFile("../Info.plist")
	if err != nil {
		t.Fatal(err)
	}
	var plist struct {
		Dict struct {
			Items []struct {
				XMLName xml.Name
				Value   string `xml:",chardata"`
			} `xml:",any"`
		} `xml:"dict"`
	}
	if err := xml.Unmarshal(data, &plist); err != nil {
		t.Fatalf("Info.plist: %v", err)
	}
	kv := map[string]string{}
	items := plist.Dict.Items
	for i := 0; i+1 < len(items); i += 2 {
		if items[i].XMLName.Local != "key" {
			t.Fatalf("Info.plist: expected <key>, got <%s>", items[i].XMLName.Local)
		}
		v := items[i+1].Value
		if v == "" {
			v = "<" + items[i+1].XMLName.Local + "/>"
		}
		kv[items[i].Value] = v
	}
	for k, want := range map[string]string{
		"LSUIElement":         "<true/>",
		"CFBundleExecutable":  "TheSystem",
		"CFBundleIdentifier":  "dev.thesystem.TheSystem",
		"CFBundlePackageType": "APPL",
	} {
		if kv[k] != want {
			t.Errorf("Info.plist %s = %q, want %q", k, kv[k], want)
		}
	}
}
