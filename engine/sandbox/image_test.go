package sandbox

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"testing"
)

// TestRuntimeRootfsLibraries: a dynamic runtime brings its shared
// libraries and loader; a static one (the VM test's runtime) none.
func TestRuntimeRootfsLibraries(t *testing.T) {
	static := filepath.Join(t.TempDir(), "netcheck")
	buildStatic(t, "./testdata/netcheck", static)
	for _, tc := range []struct {
		name, bin string
		libs      bool
	}{
		{"dynamic", "/bin/echo", true},
		{"static", static, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := RuntimeRootfs(t.Context(), map[string]string{"claude": tc.bin}, 1000, 1000, &buf); err != nil {
				t.Fatal(err)
			}
			var names []string
			tr := tar.NewReader(&buf)
			for {
				h, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, h.Name)
			}
			if !slices.Contains(names, "usr/local/bin/claude") {
				t.Errorf("no runtime in %v", names)
			}
			hasLibc := slices.ContainsFunc(names, func(n string) bool { return filepath.Base(n) == "libc.so.6" })
			if hasLibc != tc.libs {
				t.Errorf("libc in the rootfs: %v, want %v (%v)", hasLibc, tc.libs, names)
			}
		})
	}
}
