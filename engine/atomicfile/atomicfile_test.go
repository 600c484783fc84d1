package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".*tmp")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}

// Two writers at once: each writes whole, through a temp file of its own
// (a fixed temp name would let one rename the other's half-written file).
func TestConcurrentWriters(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state")
	a, b := strings.Repeat("a", 1<<20), strings.Repeat("b", 1<<20)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			c := a
			if i%2 == 1 {
				c = b
			}
			if err := Write(p, []byte(c), 0o644); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, _ := os.ReadFile(p)
	if string(got) != a && string(got) != b {
		t.Fatalf("a mix of writes: %d bytes", len(got))
	}
}

func TestWriteOwned(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	p := filepath.Join(t.TempDir(), "token")
	if err := WriteOwned(p, []byte("tok\n"), 0o400, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 1000 || st.Gid != 1000 || fi.Mode().Perm() != 0o400 {
		t.Errorf("owner %d:%d mode %v", st.Uid, st.Gid, fi.Mode().Perm())
	}
}
