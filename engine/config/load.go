package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/thesystem-dev/thesystem/engine/redact"
	"github.com/thesystem-dev/thesystem/engine/secrets"
)

// Issue is one finding about a configuration file. It names the file, the
// line (0 when the key is absent from the file) and the dotted key.
type Issue struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

// String formats the issue as `file:line: key: message`.
func (i Issue) String() string {
	var b strings.Builder
	b.WriteString(i.File)
	if i.Line > 0 {
		fmt.Fprintf(&b, ":%d", i.Line)
	}
	b.WriteString(": ")
	if i.Key != "" {
		b.WriteString(i.Key)
		b.WriteString(": ")
	}
	b.WriteString(i.Message)
	return b.String()
}

// Error lists every problem that makes a configuration unusable. Callers
// detect it with errors.As to tell misconfiguration from other failures.
type Error struct {
	Issues []Issue
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		lines[i] = is.String()
	}
	return strings.Join(lines, "\n")
}

// Options are the environment a load runs in. The zero value uses the
// process environment, runtime.GOOS and the user's home directory.
type Options struct {
	// LookupEnv resolves ${VAR}; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// GOOS picks the driver for vm.driver: auto; "" means runtime.GOOS.
	GOOS string
	// Home expands a leading ~ in paths; "" means os.UserHomeDir.
	Home string
	// LookPath finds a command (swarm.backend gro needs its own); nil
	// means exec.LookPath.
	LookPath func(string) (string, error)
}

func (o Options) withDefaults() Options {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.GOOS == "" {
		o.GOOS = runtime.GOOS
	}
	if o.Home == "" {
		o.Home, _ = os.UserHomeDir()
	}
	if o.LookPath == nil {
		o.LookPath = exec.LookPath
	}
	return o
}

// Loaded is a configuration together with where it came from.
type Loaded struct {
	Config Config `json:"config"`
	// File is the file read, as given to Load; "" when defaults were used.
	File string `json:"file,omitempty"`
	// Dir is the directory relative paths in the file are resolved against.
	Dir string `json:"dir"`
	// Warnings are findings that do not stop the configuration being used,
	// such as unknown keys.
	Warnings []Issue `json:"warnings,omitempty"`
}

// Load reads and validates the file at path. An empty path means no file:
// the defaults, with relative paths resolved against dir.
func Load(path, dir string, opt Options) (*Loaded, error) {
	if path == "" {
		return Parse("(defaults)", nil, dir, opt)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	absDir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, absDir, opt)
}

// Parse decodes data (the contents of the file called name) over the
// defaults, substitutes ${VAR}, validates the result and resolves paths
// against dir. On failure the error is an *Error listing every problem.
func Parse(name string, data []byte, dir string, opt Options) (*Loaded, error) {
	opt = opt.withDefaults()
	d := &decoder{name: name, env: opt.LookupEnv, lines: map[string]int{}, explicit: map[string]bool{}}
	cfg := Default()

	d.refuseKeys(data)
	if len(d.errs) == 0 && len(bytes.TrimSpace(data)) > 0 {
		var root yaml.Node
		if err := yaml.Unmarshal(data, &root); err != nil {
			d.errs = append(d.errs, yamlIssue(name, err))
		} else if d.refuseDecodedKeys(&root); len(d.errs) == 0 && len(root.Content) > 0 {
			d.value("", root.Content[0], reflect.ValueOf(&cfg).Elem())
		}
	}
	if len(d.errs) == 0 {
		d.validate(&cfg, dir, opt)
	}
	if len(d.errs) > 0 {
		return nil, &Error{Issues: d.errs}
	}
	return &Loaded{Config: cfg, File: fileOrEmpty(name, data), Dir: dir, Warnings: d.warns}, nil
}

func fileOrEmpty(name string, data []byte) string {
	if data == nil {
		return ""
	}
	return name
}

// yamlIssue turns a yaml syntax error ("yaml: line 3: …") into an Issue.
func yamlIssue(name string, err error) Issue {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	}
	return Issue{File: name, Line: line, Message: "invalid YAML: " + msg}
}

// decoder walks the YAML tree against the Config struct so that every
// error can name the key and line at fault.
type decoder struct {
	name     string
	env      func(string) (string, bool)
	lines    map[string]int  // key path → line where it appears
	explicit map[string]bool // key paths the file sets
	errs     []Issue
	warns    []Issue
}

func (d *decoder) errorf(line int, key, format string, args ...any) {
	d.errs = append(d.errs, Issue{File: d.name, Line: line, Key: key, Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) warnf(line int, key, format string, args ...any) {
	d.warns = append(d.warns, Issue{File: d.name, Line: line, Key: key, Message: fmt.Sprintf(format, args...)})
}

// lineOf returns the line of key, or of its nearest ancestor in the file.
func (d *decoder) lineOf(key string) int {
	for key != "" {
		if l, ok := d.lines[key]; ok {
			return l
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			return 0
		}
		key = key[:i]
	}
	return 0
}

const keyAdvice = `provider keys never go in thesystem.yaml: store it with "thesystem keys set <provider>" (it reads the key from a prompt or stdin)`

// refuseKeys scans the raw file, comments included, for anything shaped
// like a provider key. The message names the line and the kind of key,
// never the key.
func (d *decoder) refuseKeys(data []byte) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), maxLine)
	n := 1
	for ; sc.Scan(); n++ {
		if kind, ok := secrets.LooksLikeKey(sc.Text()); ok {
			d.errorf(n, "", "this line holds what looks like a %s; %s", kind, keyAdvice)
		}
	}
	if sc.Err() != nil {
		// Unread, it could hide anything: the file is refused.
		d.errorf(n, "", "this line is longer than %d KiB (or unreadable: %v); thesystem.yaml is not used", maxLine>>10, sc.Err())
	}
}

// maxLine bounds a line of thesystem.yaml.
const maxLine = 1 << 20

// refuseDecodedKeys looks for key-shaped text in every scalar as YAML
// decodes it, keys of mappings included: escapes ("sk\u002dant-…", "\x2d",
// escaped line breaks) hide a key from the raw lines, not from this.
func (d *decoder) refuseDecodedKeys(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode {
		if kind, ok := secrets.LooksLikeKey(n.Value); ok {
			d.errorf(n.Line, "", "this value decodes to what looks like a %s; %s", kind, keyAdvice)
		}
	}
	for _, c := range n.Content {
		d.refuseDecodedKeys(c)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// value decodes node n into v, recording lines and collecting issues.
func (d *decoder) value(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // `key:` with no value keeps the default
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.errorf(n.Line, path, "must be a mapping of keys, got %s", describe(n))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if first, dup := seen[k.Value]; dup {
				d.errorf(k.Line, p, "duplicate key (first set on line %d)", first)
				continue
			}
			seen[k.Value] = k.Line
			f, ok := fieldByTag(v, k.Value)
			if !ok {
				d.warnf(k.Line, p, "unknown key, ignored%s", suggestKey(v, k.Value))
				continue
			}
			d.lines[p] = k.Line
			d.explicit[p] = true
			d.value(p, val, f)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n.Line, path, "must be a mapping, got %s", describe(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			d.lines[p] = k.Line
			elem := reflect.New(v.Type().Elem()).Elem()
			d.value(p, val, elem)
			m.SetMapIndex(reflect.ValueOf(k.Value), elem)
		}
		v.Set(m)
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.value(path, n, elem.Elem())
		v.Set(elem)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n.Line, path, "must be a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = item.Line
			d.value(p, item, s.Index(i))
		}
		v.Set(s)
	default:
		d.scalar(path, n, v)
	}
}

func (d *decoder) scalar(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n.Line, path, "must be %s, got %s", kindName(v), describe(n))
		return
	}
	node := *n
	if strings.Contains(n.Value, "$") {
		sub, err := substitute(n.Value, d.env)
		if err != nil {
			d.errorf(n.Line, path, "%v", err)
			return
		}
		if kind, ok := secrets.LooksLikeKey(sub); ok {
			d.errorf(n.Line, path, "the environment variable here expands to what looks like a %s; %s", kind, keyAdvice)
			return
		}
		if sub != n.Value {
			// Let the substituted text resolve by its content, so that
			// `port: ${PORT}` decodes as a number.
			node.Value, node.Tag, node.Style = sub, "", 0
		}
	}
	if err := node.Decode(v.Addr().Interface()); err != nil {
		d.errorf(n.Line, path, "must be %s, got %s", kindName(v), redact.Quote(node.Value))
	}
}

func fieldByTag(v reflect.Value, key string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if tagName(t.Field(i)) == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

// suggestKey offers a known key that differs from key only in case or
// separators, the commonest typo.
func suggestKey(v reflect.Value, key string) string {
	norm := func(s string) string { return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s)) }
	t := v.Type()
	known := make([]string, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		name := tagName(t.Field(i))
		if norm(name) == norm(key) {
			return fmt.Sprintf(" (did you mean %q?)", name)
		}
		known = append(known, name)
	}
	return " (known: " + strings.Join(known, ", ") + ")"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return redact.Quote(n.Value)
	}
}

func kindName(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	default:
		return "a " + v.Kind().String()
	}
}

// ErrUnterminated is returned for a "${" without its closing brace.
var ErrUnterminated = errors.New(`unterminated "${" (write "$${" for a literal "${")`)

// substitute expands ${VAR} and ${VAR:-default}; "$${" is a literal "${".
// A variable that is unset and has no default is an error, so a typo in a
// name never turns silently into an empty value.
func substitute(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "$")
		if i < 0 || i+1 >= len(s) {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$${"):
			b.WriteString("${")
			s = s[3:]
			continue
		case !strings.HasPrefix(s, "${"):
			b.WriteByte('$')
			s = s[1:]
			continue
		}
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return "", ErrUnterminated
		}
		expr := s[2:end]
		s = s[end+1:]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			if q := redact.Quote(expr); q == redact.Hidden {
				return "", fmt.Errorf("${…}: not a valid variable name %s", q)
			}
			return "", fmt.Errorf("${%s}: %q is not a valid variable name", expr, name)
		}
		val, ok := lookup(name)
		switch {
		case ok && val != "":
			b.WriteString(val)
		case hasDef:
			b.WriteString(def)
		case ok:
			// set but empty: an explicit choice
		default:
			return "", fmt.Errorf("${%s} is not set (write ${%s:-default} to give a fallback)", name, name)
		}
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
