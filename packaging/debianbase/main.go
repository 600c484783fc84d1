// Command debianbase builds the agents' Debian base (what the engine
// builds with mmdebstrap from the Debian archive the first time it makes
// the agents' image) into a directory, unless it is there already, and
// prints its path. Give that file to the engine as THESYSTEM_DEBIAN_BASE:
// CI builds it once, outside the tests, so no test reaches the archive; a
// machine without the archive can take one built elsewhere.
//
//	go run ./packaging/debianbase -dir /var/tmp/thesystem-debian-base
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/thesystem-dev/thesystem/engine/sandbox"
)

func main() {
	dir := flag.String("dir", filepath.Join(os.TempDir(), "thesystem-debian-base"), "where the base is kept")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	d := sandbox.DefaultDevImage()
	d.CacheDir = *dir
	file := d.BaseFile(*dir)
	if _, err := os.Stat(file); err != nil {
		fmt.Fprintf(os.Stderr, "debianbase: building %s with mmdebstrap from %s (about a minute)\n", file, d.Mirror)
		t0 := time.Now()
		if _, err := d.EnsureBase(ctx, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "debianbase:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "debianbase: built in %s\n", time.Since(t0).Round(time.Second))
	}
	fmt.Println(file)
}
