package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWritePrivate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "new", "token")
	for _, content := range []string{"first\n", "second\n"} {
		if err := WritePrivate(p, []byte(content)); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		fi, _ := os.Stat(p)
		di, _ := os.Stat(filepath.Dir(p))
		if string(b) != content || fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
			t.Errorf("content %q mode %v dir %v", b, fi.Mode().Perm(), di.Mode().Perm())
		}
	}
	if _, err := os.Stat(p + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temp file left: %v", err)
	}
}
