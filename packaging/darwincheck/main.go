// Command darwincheck type-checks the module's packages as a Mac builds
// them (GOOS=darwin GOARCH=arm64 CGO_ENABLED=1), the `darwin && cgo`
// files included, without Apple's SDK: `go list -deps -json` says which
// files each package has on that platform, and go/types checks them from
// source in dependency order, with Config.FakeImportC (what comes from C
// is not checked, everything else is: a call with the wrong arguments, an
// identifier of appkit or systray misspelled). Only the packages the
// patterns name are reported; their dependencies are checked only to
// know their types.
//
//	go run ./packaging/darwincheck ./...
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	dir := flag.String("C", ".", "the module's directory")
	flag.Parse()
	patterns := flag.Args()
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	problems, n, err := Check(context.Background(), *dir, patterns)
	if err != nil {
		fmt.Fprintln(os.Stderr, "darwincheck:", err)
		os.Exit(2)
	}
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "darwincheck: %d problem(s) in the darwin/arm64 cgo build\n", len(problems))
		os.Exit(1)
	}
	fmt.Printf("darwincheck: %d packages type-check for darwin/arm64 with cgo\n", n)
}

// listed is what go list says of a package.
type listed struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	CgoFiles   []string
	ImportMap  map[string]string
	DepOnly    bool
	Error      *struct{ Err string }
}

// Check type-checks the packages patterns name in dir (and, to know their
// types, what they import) as darwin/arm64 with cgo; it returns the
// problems found in the named packages and how many were checked.
func Check(ctx context.Context, dir string, patterns []string) (problems []string, checked int, err error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"list", "-e", "-deps", "-json=ImportPath,Dir,GoFiles,CgoFiles,ImportMap,DepOnly,Error"}, patterns...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH=arm64", "CGO_ENABLED=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, 0, fmt.Errorf("go list: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var pkgs []listed
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, 0, fmt.Errorf("go list's output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	fset := token.NewFileSet()
	done := map[string]*types.Package{"unsafe": types.Unsafe}
	sizes := types.SizesFor("gc", "arm64")
	for _, p := range pkgs { // dependencies come first
		if p.ImportPath == "unsafe" {
			continue
		}
		if p.Error != nil && !p.DepOnly {
			problems = append(problems, fmt.Sprintf("%s: %s", p.ImportPath, p.Error.Err))
			continue
		}
		var files []*ast.File
		for _, name := range append(append([]string(nil), p.GoFiles...), p.CgoFiles...) {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				if !p.DepOnly {
					problems = append(problems, err.Error())
				}
				continue
			}
			files = append(files, f)
		}
		report := !p.DepOnly
		conf := types.Config{
			FakeImportC: true,
			Sizes:       sizes,
			Importer:    importerFunc(func(path string) (*types.Package, error) { return lookup(done, p.ImportMap, path) }),
			Error: func(err error) {
				if report {
					problems = append(problems, err.Error())
				}
			},
		}
		pkg, _ := conf.Check(p.ImportPath, fset, files, nil)
		done[p.ImportPath] = pkg
		checked++
	}
	return problems, checked, nil
}

// lookup is an import as the importing package sees it (its ImportMap:
// vendored standard packages).
func lookup(done map[string]*types.Package, importMap map[string]string, path string) (*types.Package, error) {
	if m, ok := importMap[path]; ok {
		path = m
	}
	if p := done[path]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("%s: not checked before its importer", path)
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }
