package config

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/thesystem-dev/thesystem/engine/provider"
	"github.com/thesystem-dev/thesystem/engine/redact"
)

// Names as the agentchat protocol defines them.
var (
	channelRE = regexp.MustCompile(`^#[a-zA-Z0-9_-]{1,31}$`)
	sizeRE    = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B?|B)?$`)
	// modelRE is a model's name as the providers spell them
	// (claude-sonnet-4-5, gpt-5-codex, models/gemini-2.5-pro, o4-mini…).
	modelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$`)
)

// Minimum VM sizes Lima can boot a podman host with.
const (
	minMemory = 1 << 30 // 1 GiB
	minDisk   = 5 << 30 // 5 GiB
)

// validate checks cfg as decoded, then resolves what depends on the host:
// vm.driver auto, and paths relative to dir.
func (d *decoder) validate(cfg *Config, dir string, opt Options) {
	oneOf := func(key, got string, allowed ...string) {
		if !slices.Contains(allowed, got) {
			d.errorf(d.lineOf(key), key, "must be one of %s, got %s", strings.Join(allowed, ", "), redact.Quote(got))
		}
	}
	between := func(key string, got, lo, hi int) bool {
		if got < lo || got > hi {
			d.errorf(d.lineOf(key), key, "must be %d..%d, got %d", lo, hi, got)
			return false
		}
		return true
	}

	oneOf("mode", cfg.Mode, ModeServer, ModeClient)
	oneOf("server.chat", cfg.Server.Chat, ChatEmbedded, ChatUpstream)

	ports := []struct {
		key  string
		port int
	}{{"server.port", cfg.Server.Port}, {"server.dashboard", cfg.Server.Dashboard}, {"proxy.port", cfg.Proxy.Port}}
	used := map[int]string{}
	for _, p := range ports {
		if !between(p.key, p.port, 1, 65535) {
			continue
		}
		if other, clash := used[p.port]; clash {
			key := p.key
			if !d.explicit[key] && d.explicit[other] {
				key, other = other, key // point at the line the user wrote
			}
			d.errorf(d.lineOf(key), key, "port %d is already taken by %s", p.port, other)
		}
		used[p.port] = p.key
	}

	if cfg.Mode == ModeClient {
		d.checkRemote(&cfg.Client, dir, opt)
	}
	d.checkProxy(&cfg.Proxy)

	d.checkSwarm(&cfg.Swarm, dir, opt)

	oneOf("vm.driver", cfg.VM.Driver, DriverAuto, DriverLima, DriverNone)
	between("vm.cpus", cfg.VM.CPUs, 1, MaxCPUs)
	d.checkSize("vm.memory", cfg.VM.Memory, minMemory)
	d.checkSize("vm.disk", cfg.VM.Disk, minDisk)
	if cfg.VM.Driver == DriverAuto {
		cfg.VM.Driver = DriverNone
		if opt.GOOS == "darwin" {
			cfg.VM.Driver = DriverLima
		}
	}
	if cfg.VM.Mount == "" {
		d.errorf(d.lineOf("vm.mount"), "vm.mount", "must name the project directory to share with the agents")
	} else if abs, ok := d.existing("vm.mount", cfg.VM.Mount, dir, opt.Home, true); ok {
		cfg.VM.Mount = abs
	}

	if len(cfg.Channels) == 0 {
		d.errorf(d.lineOf("channels"), "channels", `must list at least one channel, e.g. "#general"`)
	}
	seen := map[string]bool{}
	for i, ch := range cfg.Channels {
		key := fmt.Sprintf("channels[%d]", i)
		switch {
		case !channelRE.MatchString(ch):
			d.errorf(d.lineOf(key), key, `must be "#" then 1..31 of a-z A-Z 0-9 _ -, got %s (quote it in YAML: "#name")`, redact.Quote(ch))
		case seen[ch]:
			d.errorf(d.lineOf(key), key, "%s is listed twice", redact.Quote(ch))
		}
		seen[ch] = true
	}
}

func (d *decoder) checkProxy(p *Proxy) {
	for _, name := range slices.Sorted(maps.Keys(p.Upstreams)) {
		key := "proxy.upstreams." + name
		if !known(name) {
			d.errorf(d.lineOf(key), key, "unknown provider %s (known: %s)", redact.Quote(name), strings.Join(provider.Names(), ", "))
			continue
		}
		u, err := url.Parse(p.Upstreams[name])
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			d.errorf(d.lineOf(key), key, "must be an http:// or https:// URL with a host and no credentials or query, got %s", redact.Quote(p.Upstreams[name]))
		}
	}
	b := p.Budget
	if b.Tokens < 0 {
		d.errorf(d.lineOf("proxy.budget.tokens"), "proxy.budget.tokens", "must be 0 (unlimited) or more, got %d", b.Tokens)
	}
	if b.Requests < 0 {
		d.errorf(d.lineOf("proxy.budget.requests"), "proxy.budget.requests", "must be 0 (unlimited) or more, got %d", b.Requests)
	}
	if period, err := time.ParseDuration(b.Period); err != nil || period < time.Minute {
		d.errorf(d.lineOf("proxy.budget.period"), "proxy.budget.period", "must be a duration of a minute or more like 1h or 24h, got %s", redact.Quote(b.Period))
	}
	for _, model := range slices.Sorted(maps.Keys(p.Prices)) {
		key := "proxy.prices." + model
		pr := p.Prices[model]
		if pr.Input == nil || pr.Output == nil {
			d.errorf(d.lineOf(key), key, "input and output are required (US dollars per million tokens), e.g. {input: 3, output: 15}")
			continue
		}
		for _, f := range []struct {
			name string
			v    *float64
		}{{"input", pr.Input}, {"output", pr.Output}, {"cache_read", pr.CacheRead}, {"cache_write", pr.CacheWrite}} {
			if f.v != nil && (*f.v < 0 || *f.v > 10000) {
				d.errorf(d.lineOf(key+"."+f.name), key+"."+f.name, "must be 0..10000 US dollars per million tokens, got %v", *f.v)
			}
		}
	}
}

// BudgetPeriod is the parsed proxy.budget.period of a validated config.
func (b Budget) BudgetPeriod() time.Duration {
	d, _ := time.ParseDuration(b.Period)
	return d
}

// checkRemote checks client.remote, a ws:// or wss:// URL (http:// and
// https:// are taken as those): plain ws:// only to this machine's
// loopback (anything else would carry the team's chat in the clear), and
// client.ca_file, a file of PEM certificates when set.
func (d *decoder) checkRemote(c *Client, dir string, opt Options) {
	const key = "client.remote"
	if c.Remote == "" {
		d.errorf(d.lineOf(key), key, "is required when mode is client (e.g. wss://chat.example.com)")
		return
	}
	u, err := url.Parse(c.Remote)
	if err != nil || u.Host == "" || !slices.Contains([]string{"ws", "wss", "http", "https"}, u.Scheme) {
		d.errorf(d.lineOf(key), key, "must be a ws://, wss://, http:// or https:// URL with a host, got %s", redact.Quote(c.Remote))
		return
	}
	if u.User != nil {
		// It would be shown by status, the logs and the bridge's health.
		d.errorf(d.lineOf(key), key, "carries credentials (user:password@), which would be shown in status and the logs: give the server's URL without them")
		return
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	if u.Scheme == "ws" && !isLoopback(u.Hostname()) {
		d.errorf(d.lineOf(key), key, "%s would carry the team's chat unencrypted: use wss:// (plain ws:// only to this machine's loopback)", redact.Quote(c.Remote))
		return
	}
	c.Remote = u.String()
	if c.CAFile != "" {
		abs, ok := d.existing("client.ca_file", c.CAFile, dir, opt.Home, false)
		if !ok {
			return
		}
		c.CAFile = abs
		b, err := os.ReadFile(abs)
		if err != nil || !bytes.Contains(b, []byte("-----BEGIN CERTIFICATE-----")) {
			d.errorf(d.lineOf("client.ca_file"), "client.ca_file", "%s holds no PEM certificate", abs)
		}
	}
}

// isLoopback: host names this machine's loopback.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (d *decoder) checkSwarm(s *Swarm, dir string, opt Options) {
	if !slices.Contains(Backends(), s.Backend) {
		d.errorf(d.lineOf("swarm.backend"), "swarm.backend", "must be one of %s, got %s", strings.Join(Backends(), ", "), redact.Quote(s.Backend))
	} else if len(s.Backends) == 0 {
		d.checkGro("swarm.backend", s.Backend, opt)
	}
	if len(s.Backends) == 0 {
		if s.Agents < 1 || s.Agents > MaxAgents {
			d.errorf(d.lineOf("swarm.agents"), "swarm.agents", "must be 1..%d, got %d", MaxAgents, s.Agents)
		}
	} else {
		d.checkGroups(s, opt)
	}
	if !slices.Contains([]string{PermissionsAuto, PermissionsAsk}, s.Permissions) {
		d.errorf(d.lineOf("swarm.permissions"), "swarm.permissions", "must be auto (agents work without asking, inside their sandbox) or ask, got %s", redact.Quote(s.Permissions))
	}
	if s.MaxHops < 1 || s.MaxHops > 100 {
		d.errorf(d.lineOf("swarm.max_hops"), "swarm.max_hops", "must be 1..100 (agent-to-agent hand-offs in a row), got %d", s.MaxHops)
	}
	if s.Mission != "" && s.MissionFile != "" {
		d.errorf(d.lineOf("swarm.mission_file"), "swarm.mission_file", "set either swarm.mission or swarm.mission_file, not both")
	}
	if s.MissionFile != "" {
		if abs, ok := d.existing("swarm.mission_file", s.MissionFile, dir, opt.Home, false); ok {
			s.MissionFile = abs
		}
	}
	if s.Containerfile != "" {
		if abs, ok := d.existing("swarm.containerfile", s.Containerfile, dir, opt.Home, false); ok {
			s.Containerfile = abs
		}
	}
}

func (d *decoder) checkGroups(s *Swarm, opt Options) {
	sum := 0
	for i := range s.Backends {
		g := &s.Backends[i]
		key := fmt.Sprintf("swarm.backends[%d]", i)
		if g.Backend == "" {
			g.Backend = s.Backend
		}
		if g.Provider == "" {
			g.Provider = BackendProvider(g.Backend)
		}
		switch {
		case !slices.Contains(Backends(), g.Backend):
			d.errorf(d.lineOf(key+".backend"), key+".backend", "must be one of %s, got %s", strings.Join(Backends(), ", "), redact.Quote(g.Backend))
		case !d.checkGro(key+".backend", g.Backend, opt):
		case g.Provider == "":
			d.errorf(d.lineOf(key), key+".provider", "is required for backend %s (one of %s)", g.Backend, strings.Join(provider.Names(), ", "))
		case !known(g.Provider):
			d.errorf(d.lineOf(key+".provider"), key+".provider", "unknown provider %s (known: %s)", redact.Quote(g.Provider), strings.Join(provider.Names(), ", "))
		case g.Backend == BackendClaude && g.Provider != "anthropic":
			d.errorf(d.lineOf(key+".provider"), key+".provider", "backend claude talks only to anthropic, got %s (backend codex talks to openai)", redact.Quote(g.Provider))
		case g.Backend == BackendCodex && g.Provider != "openai":
			d.errorf(d.lineOf(key+".provider"), key+".provider", "backend codex talks only to openai, got %s (backend claude talks to anthropic)", redact.Quote(g.Provider))
		}
		if g.Model != "" && !modelRE.MatchString(g.Model) {
			d.errorf(d.lineOf(key+".model"), key+".model", "is not a model name: %s", redact.Quote(g.Model))
		}
		if g.Count < 1 || g.Count > MaxAgents {
			d.errorf(d.lineOf(key+".count"), key+".count", "must be 1..%d, got %d", MaxAgents, g.Count)
		}
		sum += g.Count
	}
	switch {
	case sum > MaxAgents:
		d.errorf(d.lineOf("swarm.backends"), "swarm.backends", "counts add up to %d agents, more than the limit of %d", sum, MaxAgents)
	case d.explicit["swarm.agents"] && s.Agents != sum:
		d.errorf(d.lineOf("swarm.agents"), "swarm.agents", "is %d but the counts in swarm.backends add up to %d; drop swarm.agents or make them agree", s.Agents, sum)
	default:
		s.Agents = sum
	}
}

// checkGro refuses backend gro unless its runtime is installed: the
// check is here, at start, not in each agent as it starts.
func (d *decoder) checkGro(key, backend string, opt Options) bool {
	if backend != BackendGro {
		return true
	}
	if _, err := opt.LookPath("gro"); err != nil {
		d.errorf(d.lineOf(key), key, "gro's runtime is not installed (no gro command on PATH: npm install -g @tjamescouch/gro); "+
			"for agents not tied to Anthropic use backend: codex (OpenAI's Codex CLI, provider openai)")
		return false
	}
	return true
}

func known(name string) bool {
	_, ok := provider.Lookup(name)
	return ok
}

func (d *decoder) checkSize(key, s string, minimum int64) {
	n, err := ParseSize(s)
	switch {
	case err != nil:
		d.errorf(d.lineOf(key), key, "%v", err)
	case n < minimum:
		d.errorf(d.lineOf(key), key, "must be at least %s, got %s", FormatSize(minimum), redact.Quote(s))
	}
}

// existing resolves p (~ and relative to dir) and checks it exists as a
// directory (wantDir) or a regular file.
func (d *decoder) existing(key, p, dir, home string, wantDir bool) (string, bool) {
	abs := ExpandPath(p, dir, home)
	fi, err := os.Stat(abs)
	switch {
	case err != nil:
		d.errorf(d.lineOf(key), key, "%s does not exist", abs)
		return "", false
	case wantDir && !fi.IsDir():
		d.errorf(d.lineOf(key), key, "%s is not a directory", abs)
		return "", false
	case !wantDir && !fi.Mode().IsRegular():
		d.errorf(d.lineOf(key), key, "%s is not a regular file", abs)
		return "", false
	}
	return abs, true
}

// ExpandPath expands a leading ~ to home and makes p absolute against dir.
func ExpandPath(p, dir, home string) string {
	if p == "~" {
		p = home
	} else if rest, ok := strings.CutPrefix(p, "~/"); ok {
		p = filepath.Join(home, rest)
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return filepath.Clean(p)
}

// ParseSize parses sizes as Lima writes them: "8GiB", "512MiB", "40G",
// "1.5GiB". A bare number is bytes. Units are powers of 1024.
func ParseSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("must be a size like 8GiB or 512MiB, got %s", redact.Quote(s))
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("must be a size like 8GiB or 512MiB, got %s", redact.Quote(s))
	}
	shift := 0
	if m[2] != "" {
		shift = 10 * (strings.IndexByte("BKMGT", m[2][0]))
	}
	return int64(f * float64(int64(1)<<shift)), nil
}

// FormatSize renders n bytes in the largest whole binary unit.
func FormatSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for i < len(units)-1 && n >= 1024 && n%1024 == 0 {
		n /= 1024
		i++
	}
	return fmt.Sprintf("%d%s", n, units[i])
}
