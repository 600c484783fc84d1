package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCheck: this module's packages, the darwin cgo files included,
// type-check as a Mac builds them; mistakes planted in a darwin-only cgo
// file (a misspelled appkit identifier, a systray call with the wrong
// arguments, a Go type error) are each reported with their file and line,
// while what comes from C is not checked.
func TestCheck(t *testing.T) {
	problems, n, err := Check(t.Context(), "../..", []string{"./..."})
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 || n < 100 {
		t.Fatalf("this module: %d packages, problems:\n%s", n, strings.Join(problems, "\n"))
	}

	// A module of its own that uses appkit and systray as ours does.
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	gosum, err := os.ReadFile("../../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go .*$`).Find(gomod)
	var requires []string
	for _, m := range regexp.MustCompile(`(?m)^\s*(fyne\.io/systray|github\.com/progrium/darwinkit) (\S+)`).FindAllSubmatch(gomod, -1) {
		requires = append(requires, string(m[1])+" "+string(m[2]))
	}
	if len(requires) != 2 {
		t.Fatalf("go.mod requires %v", requires)
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/planted\n\n" + string(goVersion) + "\n\nrequire (\n\t" + strings.Join(requires, "\n\t") + "\n)\n",
		"go.sum": string(gosum),
		"menu_darwin_cgo.go": `//go:build darwin && cgo

package planted

/*
#include <stdlib.h>
*/
import "C"

import (
	"fyne.io/systray"
	"github.com/progrium/darwinkit/macos/appkit"
)

func Show() int {
	alert := appkit.NewAlrt()
	alert.RunModal()
	systray.SetTitle("TheSystem", "extra")
	C.free(nil) // from C: not checked
	var n int = "three"
	return n
}
`,
		"menu_linux.go": "package planted\n\nfunc Show() int { return 0 }\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("GOFLAGS", "-mod=mod")
	problems, _, err = Check(t.Context(), dir, []string{"./..."})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(problems, "\n")
	for _, want := range []string{
		"menu_darwin_cgo.go:16:18: undefined: appkit.NewAlrt",
		"menu_darwin_cgo.go:18:32: too many arguments in call to systray.SetTitle",
		`menu_darwin_cgo.go:20:14: cannot use "three"`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in:\n%s", want, all)
		}
	}
	if strings.Contains(all, "free") || len(problems) != 3 {
		t.Errorf("%d problems, want the 3 planted:\n%s", len(problems), all)
	}
}
