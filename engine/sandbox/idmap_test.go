package sandbox

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestFreeIDBase(t *testing.T) {
	const first = firstIDBase
	for _, tc := range []struct {
		name                          string
		passwd, group, subuid, subgid string
		want                          int
		err                           string
	}{
		{name: "nothing there", want: first},
		{name: "ordinary machine", passwd: "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/bash\n",
			group: "root:x:0:\nalice:x:1000:\n", subuid: "alice:100000:65536\n", subgid: "alice:100000:65536\n", want: first},
		{name: "an account in the first range", passwd: "svc:x:" + itoa(first+1000) + ":1::/:/bin/false\n", want: first + IDRange},
		{name: "a group at its last id", group: "g:x:" + itoa(first+IDRange-1) + ":\n", want: first + IDRange},
		{name: "a subordinate range over two", subuid: "bob:" + itoa(first-5) + ":" + itoa(IDRange+10) + "\n", want: first + 2*IDRange},
		{name: "subgid too", subgid: "# comment\n\nbob:" + itoa(first) + ":1\n", want: first + IDRange},
		{name: "a range just below", subuid: "bob:" + itoa(first-IDRange) + ":" + itoa(IDRange) + "\n", want: first},
		{name: "every range taken", subuid: "bob:" + itoa(first) + ":" + itoa(idBaseTries*IDRange) + "\n", err: "no free range"},
		{name: "a malformed subuid", subuid: "bob:100000\n", err: "subuid:1: want name:first:count"},
		{name: "a malformed passwd", passwd: "\nalice:x:ten:1::/:/bin/sh\n", err: `passwd:2: the id "ten" is not a number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var files IDFiles // an empty text: a missing file
			for _, f := range []struct {
				path *string
				name string
				text string
			}{{&files.Passwd, "passwd", tc.passwd}, {&files.Group, "group", tc.group}, {&files.SubUID, "subuid", tc.subuid}, {&files.SubGID, "subgid", tc.subgid}} {
				*f.path = filepath.Join(dir, f.name)
				if f.text != "" {
					if err := os.WriteFile(*f.path, []byte(f.text), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			got, err := FreeIDBase(files)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %d, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %#x, %v; want %#x", got, err, tc.want)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
