package proxy

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestAuditLogRotates: past its size the log is rotated between lines,
// the oldest file beyond Keep dropped; written from many goroutines, every
// line is whole and none is lost (but the dropped file's).
func TestAuditLogRotates(t *testing.T) {
	path := t.TempDir() + "/audit.jsonl"
	a := &AuditLog{Path: path, MaxBytes: 1000, Keep: 3}
	line := func(g, i int) []byte {
		return fmt.Appendf(nil, `{"g":%d,"i":%03d,"pad":"%s"}`+"\n", g, i, strings.Repeat("x", 40))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 20 {
				if _, err := a.Write(line(g, i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	_ = a.Close()
	files := a.Files()
	if len(files) != 4 || files[0] != path+".3" || files[3] != path {
		t.Fatalf("files %v", files)
	}
	lines := 0
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := fh.Stat()
		if fi.Size() > 1000 || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %d bytes, mode %v", f, fi.Size(), fi.Mode().Perm())
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if l := sc.Text(); !strings.HasPrefix(l, `{"g":`) || !strings.HasSuffix(l, `"}`) {
				t.Errorf("%s: a broken line %q", f, l)
			}
			lines++
		}
		_ = fh.Close()
	}
	// 80 lines of 66 bytes, 15 to a file: five full files and 5 lines in
	// the current one; three rotated ones kept.
	if lines != 3*15+5 {
		t.Errorf("%d lines in the kept files, want 50", lines)
	}
	if _, err := os.Stat(path + ".4"); err == nil {
		t.Error("more files kept than Keep")
	}
}
