package sandbox

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// RuntimePackage is the agent runtime for one platform as npm ships it:
// claude-code's native binary is the only file that matters in the
// package @anthropic-ai/claude-code-linux-<arch>. It is fetched for the
// containers' OS and architecture (linux, the guest's), never the host's,
// and checked against the integrity pinned here before anything reads it.
type RuntimePackage struct {
	// Name is the npm package, Version its exact version.
	Name, Version string
	// GOARCH is the architecture the binary must be built for.
	GOARCH string
	// Integrity is npm's "sha512-<base64>" of the tarball.
	Integrity string
	// Member is the binary's path in the tarball.
	Member string
	// MaxSize bounds the download (0: 512 MiB): a mirror that streams
	// without end fills no disk.
	MaxSize int64
}

func (p RuntimePackage) maxSize() int64 {
	if p.MaxSize > 0 {
		return p.MaxSize
	}
	return 512 << 20
}

// claudeCodeIntegrity pins the platform packages of each claude-code
// release the engine knows (npm view @anthropic-ai/claude-code-linux-<arch>@<v> dist.integrity).
func claudeCodeIntegrity(version, goarch string) string {
	switch version + "/" + goarch {
	case "2.1.330/amd64":
		return "sha512-9Gn+V7DtJ8M1nztP9CeDVl9g3RtrepI7rOFTyPRRnZe8D6zebIHKmC7OvBauucuAP0X0k85SDN/LPVZyjsGezQ=="
	case "2.1.330/arm64":
		return "sha512-V4yanAY5EA5UpwwRPtjSfqDbNqAlUJeVn3NYZw2AgmRHjdpSsLtHAzbxRXfkAnbjwTXzE0uedjQxUY02ARPcsA=="
	}
	return ""
}

// ClaudeCodePackage is claude-code's linux package for goarch.
func ClaudeCodePackage(version, goarch string) (RuntimePackage, error) {
	npmArch := map[string]string{"amd64": "x64", "arm64": "arm64"}[goarch]
	if npmArch == "" {
		return RuntimePackage{}, fmt.Errorf("claude-code ships no linux binary for %s (amd64 and arm64 only)", goarch)
	}
	sum := claudeCodeIntegrity(version, goarch)
	if sum == "" {
		return RuntimePackage{}, fmt.Errorf("claude-code %s: no pinned integrity for linux-%s", version, npmArch)
	}
	return RuntimePackage{Name: "@anthropic-ai/claude-code-linux-" + npmArch, Version: version, GOARCH: goarch,
		Integrity: sum, Member: "package/claude"}, nil
}

// codexIntegrity pins the linux packages of each Codex CLI release the
// engine knows (npm view @openai/codex@<v>-linux-<arch> dist.integrity):
// npm ships them as versions of @openai/codex itself.
func codexIntegrity(version, goarch string) string {
	switch version + "/" + goarch {
	case "0.171.0/amd64":
		return "sha512-l66NZkQgdk2C3pbcfULDz42yEUB581MVA6I+Y43Wp4OIqEy73HCdmZ0GTjeAHY2ycuH4N00d9VsLrwT1jxshTw=="
	case "0.171.0/arm64":
		return "sha512-9z17t4bbUJ9UCIb49O4PoA+ki+45q3rd8nZ8PeH6sYnlKkBld/Xpo/OS3h3Ti954+foshX4o7k5TCU8N7zzqQA=="
	}
	return ""
}

// CodexPackage is OpenAI's Codex CLI for linux on goarch: its static
// (musl) binary is the only file used; the package's sandbox helper,
// voice libraries and bundled ripgrep are not (the container is the
// sandbox, the image has ripgrep).
func CodexPackage(version, goarch string) (RuntimePackage, error) {
	npmArch := map[string]string{"amd64": "x64", "arm64": "arm64"}[goarch]
	triple := map[string]string{"amd64": "x86_64-unknown-linux-musl", "arm64": "aarch64-unknown-linux-musl"}[goarch]
	if npmArch == "" {
		return RuntimePackage{}, fmt.Errorf("codex ships no linux binary for %s (amd64 and arm64 only)", goarch)
	}
	sum := codexIntegrity(version, goarch)
	if sum == "" {
		return RuntimePackage{}, fmt.Errorf("codex %s: no pinned integrity for linux-%s", version, npmArch)
	}
	return RuntimePackage{Name: "@openai/codex", Version: version + "-linux-" + npmArch, GOARCH: goarch,
		Integrity: sum, Member: "package/vendor/" + triple + "/bin/codex"}, nil
}

// PinnedPackage is the linux package of the runtime whose command is
// command ("claude", "codex") at version, for goarch.
func PinnedPackage(command, version, goarch string) (RuntimePackage, error) {
	switch command {
	case "claude":
		return ClaudeCodePackage(version, goarch)
	case "codex":
		return CodexPackage(strings.TrimSuffix(strings.TrimSuffix(version, "-linux-x64"), "-linux-arm64"), goarch)
	}
	return RuntimePackage{}, fmt.Errorf("no runtime package is known for the command %q (claude, codex)", command)
}

// Runtime is one agent runtime in the agents' image: its command on the
// image's PATH (/usr/local/bin/<Command>) and the file it comes from, an
// npm package's tarball (Package says which; its binary is checked and
// extracted) or a linux binary (Package zero).
type Runtime struct {
	Command string
	File    string
	Package RuntimePackage
}

// ID names the runtime's content: a package by its name, version and
// integrity (checked when it was fetched), a binary by its sha256 (after
// checking it is a linux binary for goarch).
func (r Runtime) ID(goarch string) (string, error) {
	if r.Package.Name != "" {
		return r.Command + "=" + r.Package.Name + "@" + r.Package.Version + " " + r.Package.Integrity, nil
	}
	f, err := os.Open(r.File)
	if err != nil {
		return "", fmt.Errorf("the agents' runtime %s: %w", r.Command, err)
	}
	defer func() { _ = f.Close() }()
	var head [64]byte
	n, _ := io.ReadFull(f, head[:])
	if err := CheckELF(head[:n], goarch); err != nil {
		return "", fmt.Errorf("the agents' runtime %s (%s): %w", r.Command, r.File, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return r.Command + "=sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// runtimesID names a list of runtimes (see Runtime.ID).
func runtimesID(rs []Runtime, goarch string) (string, error) {
	if len(rs) == 0 {
		return "", errors.New("the agents' image needs a runtime")
	}
	ids := make([]string, len(rs))
	for i, r := range rs {
		id, err := r.ID(goarch)
		if err != nil {
			return "", err
		}
		ids[i] = id
	}
	return strings.Join(ids, "\n"), nil
}

// open hands use the runtime's binary (its content and size): a
// package's, checked to be a linux ELF for goarch, or the file itself.
func (r Runtime) open(goarch string, use func(r io.Reader, size int64) error) error {
	f, err := os.Open(r.File) // follows symlinks: the image holds the real file
	if err != nil {
		return fmt.Errorf("the agents' runtime %s: %w", r.Command, err)
	}
	defer func() { _ = f.Close() }()
	if r.Package.Name == "" {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		return use(f, fi.Size())
	}
	pkg := r.Package
	pkg.GOARCH = goarch
	return pkg.Open(f, use)
}

// DefaultNPMRegistry is where packages come from unless the environment
// names a mirror (npm's own npm_config_registry).
const DefaultNPMRegistry = "https://registry.npmjs.org"

// NPMRegistry is the registry npm itself would use in this environment.
func NPMRegistry(getenv func(string) string) string {
	for _, k := range []string{"npm_config_registry", "NPM_CONFIG_REGISTRY"} {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return strings.TrimRight(v, "/")
		}
	}
	return DefaultNPMRegistry
}

// FileName is the tarball's name, unique per package, version and
// integrity: what a cache keeps it as.
func (p RuntimePackage) FileName() string {
	base := p.Name[strings.LastIndex(p.Name, "/")+1:]
	sum := strings.NewReplacer("/", "_", "+", "-", "=", "").Replace(strings.TrimPrefix(p.Integrity, "sha512-"))
	if len(sum) > 12 {
		sum = sum[:12]
	}
	return base + "-" + p.Version + "-" + sum + ".tgz"
}

// TarballURL is the package's tarball in registry (npm's layout).
func (p RuntimePackage) TarballURL(registry string) string {
	base := p.Name[strings.LastIndex(p.Name, "/")+1:]
	return strings.TrimRight(registry, "/") + "/" + p.Name + "/-/" + base + "-" + p.Version + ".tgz"
}

// Fetch makes sure dir holds the package's tarball, verified, and returns
// its path: an earlier download is reused; a new one is downloaded from
// registry into a temporary file, checked against the pinned integrity
// and for a binary of the right architecture, then renamed into place (an
// interrupted download leaves nothing that looks done). progress, when
// not nil, hears the bytes read so far and the total (-1 when unknown).
func (p RuntimePackage) Fetch(ctx context.Context, client *http.Client, registry, dir string, progress func(done, total int64)) (string, error) {
	file := filepath.Join(dir, p.FileName())
	if f, err := os.Open(file); err == nil {
		// Checked again at every use: a file changed since (by anyone who
		// could write the state dir) is downloaded anew.
		got, err := integrityOf(f)
		_ = f.Close()
		if err == nil && got == p.Integrity {
			return file, nil
		}
		_ = os.Remove(file)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	url := p.TarballURL(registry)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("download %s@%s: %w", p.Name, p.Version, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download %s@%s from %s: %s", p.Name, p.Version, url, resp.Status)
	}
	if resp.ContentLength > p.maxSize() {
		return "", fmt.Errorf("download %s@%s from %s: %d bytes, more than the %d a runtime may be", p.Name, p.Version, url, resp.ContentLength, p.maxSize())
	}
	tmp, err := os.CreateTemp(dir, ".download-*")
	if err != nil {
		return "", err
	}
	defer func() { _ = tmp.Close(); _ = os.Remove(tmp.Name()) }()
	h := sha512.New()
	body := io.LimitReader(resp.Body, p.maxSize()+1)
	if progress != nil {
		body = &progressReader{r: body, total: resp.ContentLength, f: progress}
	}
	n, err := io.Copy(io.MultiWriter(tmp, h), body)
	if err != nil {
		return "", fmt.Errorf("download %s@%s: %w", p.Name, p.Version, err)
	}
	if n > p.maxSize() {
		return "", fmt.Errorf("download %s@%s from %s: more than the %d bytes a runtime may be (a broken mirror?)", p.Name, p.Version, url, p.maxSize())
	}
	if got := integrityString(h.Sum(nil)); got != p.Integrity {
		return "", fmt.Errorf("%s@%s from %s: integrity %s, want %s: not the package this release pins (a broken mirror?)",
			p.Name, p.Version, url, got, p.Integrity)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if err := p.Check(tmp); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return file, os.Rename(tmp.Name(), file)
}

// integrityOf is npm's integrity string of what r holds.
func integrityOf(r io.Reader) (string, error) {
	h := sha512.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return integrityString(h.Sum(nil)), nil
}

func integrityString(sum []byte) string { return "sha512-" + base64.StdEncoding.EncodeToString(sum) }

// Check reads the tarball and makes sure its binary is a linux ELF for
// the package's architecture.
func (p RuntimePackage) Check(tgz io.Reader) error {
	return p.Open(tgz, func(r io.Reader, _ int64) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
}

// Open finds the binary in the tarball, checks its ELF header and hands
// it to use (its content, size) while the tarball is read.
func (p RuntimePackage) Open(tgz io.Reader, use func(r io.Reader, size int64) error) error {
	gz, err := gzip.NewReader(tgz)
	if err != nil {
		return fmt.Errorf("%s@%s: %w", p.Name, p.Version, err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s@%s: no %s in the package", p.Name, p.Version, p.Member)
		}
		if err != nil {
			return fmt.Errorf("%s@%s: %w", p.Name, p.Version, err)
		}
		if h.Name != p.Member || h.Typeflag != tar.TypeReg {
			continue
		}
		var head [64]byte
		n, err := io.ReadFull(tr, head[:])
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s@%s: %s: %w", p.Name, p.Version, p.Member, err)
		}
		if err := CheckELF(head[:n], p.GOARCH); err != nil {
			return fmt.Errorf("%s@%s: %s: %w", p.Name, p.Version, p.Member, err)
		}
		return use(io.MultiReader(bytes.NewReader(head[:n]), tr), h.Size)
	}
}

// CheckELF says whether head (a file's first 64 bytes) starts a 64-bit
// little-endian linux (or System V) ELF executable for goarch.
func CheckELF(head []byte, goarch string) error {
	if len(head) < 20 || string(head[:4]) != "\x7fELF" {
		return errors.New("not an ELF binary (a linux program is needed)")
	}
	if head[4] != 2 || head[5] != 1 {
		return errors.New("not a 64-bit little-endian ELF binary")
	}
	if osabi := head[7]; osabi != 0 && osabi != 3 {
		return fmt.Errorf("an ELF binary for OS ABI %d, not linux", osabi)
	}
	want, ok := map[string]uint16{"amd64": 62, "arm64": 183}[goarch] // ELF's e_machine
	if !ok {
		return fmt.Errorf("no ELF machine known for %s", goarch)
	}
	if got := binary.LittleEndian.Uint16(head[18:20]); got != want {
		name := map[uint16]string{62: "amd64", 183: "arm64", 3: "386", 40: "arm"}[got]
		if name == "" {
			name = fmt.Sprintf("machine %d", got)
		}
		return fmt.Errorf("an ELF binary for %s, not %s", name, goarch)
	}
	return nil
}

// progressReader tells f how much of total it has read.
type progressReader struct {
	r     io.Reader
	done  int64
	total int64
	f     func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	p.f(p.done, p.total)
	return n, err
}
