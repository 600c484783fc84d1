// Package compat is the compatibility matrix: which versions of the
// upstream ecosystem (agentchat, agentctl-swarm, agentforce, claude-code,
// gro) and of our own embedded components work with this build. It is
// checked on start and on upgrade; an incompatible component blocks the
// start with a suggested resolution instead of failing later in an obscure
// way.
package compat

import (
	"errors"
	"fmt"
	"sort"

	"github.com/Masterminds/semver/v3"
)

// Component is one row of the matrix.
type Component struct {
	// Name is how the CLI and the config call it.
	Name string `json:"name"`
	// Package is the npm package that provides the upstream version, if any.
	Package string `json:"package,omitempty"`
	// Range is the semver constraint a version must satisfy.
	Range string `json:"range"`
	// Embedded is the version of the protocol our built-in replacement
	// speaks; "" when there is no built-in replacement.
	Embedded string `json:"embedded,omitempty"`
}

// Matrix is the set of components this build knows about.
type Matrix struct {
	components []Component
}

// Default is the matrix embedded in this build. self is this build's own
// version: our in-container and in-VM binaries must be exactly that.
func Default(self string) Matrix {
	return Matrix{components: []Component{
		{Name: "agentchat", Package: "@tjamescouch/agentchat", Range: ">=0.22.0 <1.0.0", Embedded: "0.22.0"},
		{Name: "agentctl-swarm", Package: "@tjamescouch/agentctl-swarm", Range: ">=0.1.0 <1.0.0", Embedded: "0.1.0"},
		{Name: "agentforce", Package: "@tjamescouch/agentforce", Range: ">=0.1.0 <1.0.0", Embedded: "0.1.0"},
		{Name: "claude-code", Package: "@anthropic-ai/claude-code", Range: ">=2.0.0 <3.0.0"},
		{Name: "gro", Package: "@tjamescouch/gro", Range: ">=0.1.0 <1.0.0"},
		{Name: "thesystem-guest", Range: exactly(self), Embedded: self},
	}}
}

// anyVersion admits every version string, semver or not.
const anyVersion = "*"

// exactly is the constraint that admits only v, or anything for a
// development build whose version (a git hash) is not semver.
func exactly(v string) string {
	if _, err := semver.NewVersion(v); err != nil {
		return anyVersion
	}
	return "=" + v
}

// Components lists the rows, sorted by name.
func (m Matrix) Components() []Component {
	out := append([]Component(nil), m.components...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ErrUnknownComponent is returned for a name the matrix does not have.
var ErrUnknownComponent = errors.New("unknown component")

func (m Matrix) lookup(name string) (Component, error) {
	for _, c := range m.components {
		if c.Name == name {
			return c, nil
		}
	}
	names := make([]string, 0, len(m.components))
	for _, c := range m.Components() {
		names = append(names, c.Name)
	}
	return Component{}, fmt.Errorf("%w %q (known: %v)", ErrUnknownComponent, name, names)
}

// Source says where a checked version came from.
type Source string

// Sources.
const (
	SourceInstalled Source = "installed" // an upstream package found on the system
	SourceEmbedded  Source = "embedded"  // our built-in replacement
	SourceMissing   Source = "missing"   // selected but not found
)

// Result is the verdict on one component.
type Result struct {
	Component string `json:"component"`
	Version   string `json:"version,omitempty"`
	Range     string `json:"range"`
	Source    Source `json:"source"`
	OK        bool   `json:"ok"`
	// Blocking is true when start must not go on with this component.
	Blocking bool `json:"blocking"`
	// Problem says what is wrong, Suggestion what to do about it.
	Problem    string `json:"problem,omitempty"`
	Suggestion string `json:"suggestion,omitempty"`
}

// Check judges an installed version of the named component. An empty
// version means the component was selected but not found.
func (m Matrix) Check(name, version string) (Result, error) {
	c, err := m.lookup(name)
	if err != nil {
		return Result{}, err
	}
	return judge(c, version, SourceInstalled), nil
}

func judge(c Component, version string, src Source) Result {
	r := Result{Component: c.Name, Version: version, Range: c.Range, Source: src}
	if version == "" {
		r.Source = SourceMissing
		r.Problem = "not installed"
		r.Blocking = true
		r.Suggestion = Suggest(c, r)
		return r
	}
	if c.Range == anyVersion {
		r.OK = true
		return r
	}
	constraint, err := semver.NewConstraint(c.Range)
	if err != nil {
		// The matrix is ours; a bad range is a bug in this build.
		r.Problem = fmt.Sprintf("the matrix has an invalid range %q: %v", c.Range, err)
		r.Blocking = true
		return r
	}
	v, err := semver.NewVersion(version)
	switch {
	case err != nil:
		r.Problem = fmt.Sprintf("version %q is not a semantic version", version)
	case constraint.Check(v):
		r.OK = true
		return r
	default:
		r.Problem = fmt.Sprintf("version %s is outside %s", version, c.Range)
	}
	r.Blocking = true
	r.Suggestion = Suggest(c, r)
	return r
}

// CheckAll judges every component. installed maps the components the
// configuration takes from upstream to the version found ("" when not
// found); every other component with a built-in replacement is judged on
// the version that replacement speaks. Components with neither are
// skipped: the configuration does not use them.
func (m Matrix) CheckAll(installed map[string]string) ([]Result, error) {
	for name := range installed {
		if _, err := m.lookup(name); err != nil {
			return nil, err
		}
	}
	var out []Result
	for _, c := range m.Components() {
		if v, ok := installed[c.Name]; ok {
			out = append(out, judge(c, v, SourceInstalled))
		} else if c.Embedded != "" {
			out = append(out, judge(c, c.Embedded, SourceEmbedded))
		}
	}
	return out, nil
}

// Blocking returns the results that must stop a start.
func Blocking(results []Result) []Result {
	var out []Result
	for _, r := range results {
		if r.Blocking {
			out = append(out, r)
		}
	}
	return out
}

// Suggest says how to resolve a failed result for component c.
func Suggest(c Component, r Result) string {
	if r.OK {
		return ""
	}
	if r.Source == SourceEmbedded {
		return "this build's embedded " + c.Name + " does not match its own matrix: reinstall TheSystem"
	}
	if c.Package == "" {
		return "reinstall TheSystem so its bundled " + c.Name + " matches this build (thesystem reinstall)"
	}
	fix := fmt.Sprintf("install a compatible version: npm install -g '%s@%s'", c.Package, c.Range)
	if c.Embedded != "" {
		fix += fmt.Sprintf(", or use the embedded %s that ships with TheSystem", c.Name)
	}
	return fix
}
