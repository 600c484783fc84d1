package packaging

import (
	"debug/elf"
	"debug/macho"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// plistDict reads a flat plist dict: key → the value element's name and
// text ("string:TheSystem", "true:").
func plistDict(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	dec.Strict = false
	out := map[string]string{}
	var key string
	var depth int
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			depth++
			if depth != 3 { // plist > dict > entries
				continue
			}
			var text string
			if err := dec.DecodeElement(&text, &el); err != nil {
				t.Fatal(err)
			}
			depth--
			if el.Name.Local == "key" {
				key = text
			} else {
				out[key] = el.Name.Local + ":" + strings.TrimSpace(text)
			}
		case xml.EndElement:
			depth--
		}
	}
}

// TestBundle builds TheSystem.app with `packaging/mkapp` and checks what
// macOS and the engine will look for in it.
func TestBundle(t *testing.T) {
	out := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "packaging/mkapp", out, "v1.2.3-4-gabc", "42", "-s -w")
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkapp: %v\n%s", err, b)
	}
	app := filepath.Join(out, "TheSystem.app", "Contents")

	p := plistDict(t, filepath.Join(app, "Info.plist"))
	for k, want := range map[string]string{
		"CFBundleIdentifier":         "string:dev.thesystem.TheSystem",
		"CFBundleExecutable":         "string:TheSystem",
		"CFBundleIconFile":           "string:AppIcon",
		"CFBundleShortVersionString": "string:1.2.3",
		"CFBundleVersion":            "string:42",
		"CFBundlePackageType":        "string:APPL",
		"LSUIElement":                "true:", // menu bar only, no Dock icon
	} {
		if p[k] != want {
			t.Errorf("Info.plist %s = %q, want %q", k, p[k], want)
		}
	}

	m, err := macho.Open(filepath.Join(app, "MacOS", "TheSystem"))
	if err != nil {
		t.Fatalf("the app's binary: %v", err)
	}
	if m.Cpu != macho.CpuArm64 || m.Type != macho.TypeExec {
		t.Errorf("the app's binary: cpu %v type %v", m.Cpu, m.Type)
	}
	_ = m.Close()

	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		f, err := elf.Open(filepath.Join(app, "Resources", "guest", "thesystem-linux-"+arch))
		if err != nil {
			t.Fatalf("guest binary %s: %v", arch, err)
		}
		if f.Machine != machine {
			t.Errorf("guest binary %s: machine %v", arch, f.Machine)
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				t.Errorf("guest binary %s is dynamically linked: the containers have no libc for it", arch)
			}
		}
		_ = f.Close()
	}

	if target, err := os.Readlink(filepath.Join(app, "Resources", "bin", "thesystem")); err != nil || target != "../../MacOS/TheSystem" {
		t.Errorf("the CLI link: %q %v", target, err)
	}
	icon, err := os.ReadFile(filepath.Join(app, "Resources", "AppIcon.icns"))
	if err != nil || len(icon) < 1024 || string(icon[:4]) != "icns" || !strings.Contains(string(icon), "ic09") {
		t.Errorf("the icon: %d bytes, %v", len(icon), err)
	}
}
