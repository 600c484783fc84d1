package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/containers/podman/v5/pkg/specgen"
	"go.podman.io/storage/pkg/idtools"
	"go.podman.io/storage/types"
)

// IDRange is how many ids a container's user namespace maps: 0..65535,
// as every distribution's root filesystem expects.
const IDRange = 65536

// IDMap is where a container's ids land on the host. With rootful podman
// the agents' uid (1000) would otherwise be the host's uid 1000, often a
// real person's account, who could then read the files the host hands to
// the containers (tokens, keys, sockets); mapped, the container's id N is
// the host's Base+N, which no account has. With rootless podman (a plain
// user's) the containers run in the user's own user namespace: Keep maps
// the container's uid and gid Keep to the user (podman's keep-id), so the
// files the host hands to the containers are the user's own and need no
// chown, and every other id of the container lands in the user's
// subordinate range. The zero IDMap maps nothing (the VM's podman, whose
// guest has no other users).
type IDMap struct {
	Base int
	Keep int
}

// Rootless says whether the containers run in the user's own user
// namespace (Keep).
func (m IDMap) Rootless() bool { return m.Keep != 0 }

// Host is the host's id for the container's id (rootful mapping; with
// Keep, the caller's own ids are the host's for Keep).
func (m IDMap) Host(id int) int { return m.Base + id }

// apply puts the mapping in podman's spec: a private user namespace.
func (m IDMap) apply(g *specgen.SpecGenerator) {
	if m.Keep != 0 {
		g.UserNS = specgen.Namespace{NSMode: specgen.KeepID, Value: fmt.Sprintf("uid=%d,gid=%d", m.Keep, m.Keep)}
		return
	}
	if m.Base == 0 {
		return
	}
	ids := []idtools.IDMap{{ContainerID: 0, HostID: m.Base, Size: IDRange}}
	g.UserNS = specgen.Namespace{NSMode: specgen.Private}
	g.IDMappings = &types.IDMappingOptions{UIDMap: ids, GIDMap: ids}
}

// MkdirOwned makes dir (0755) and gives it to uid:gid (-1: keep ours):
// a dir the host hands to the containers' uid (IDMap.Host).
func MkdirOwned(dir string, uid, gid int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if uid >= 0 {
		return os.Chown(dir, uid, gid)
	}
	return nil
}

// IDFiles are the host's account databases FreeIDBase reads; the zero
// value reads the system's.
type IDFiles struct {
	Passwd, Group, SubUID, SubGID string
}

func (f IDFiles) orDefault() IDFiles {
	def := func(s, d string) string {
		if s == "" {
			return d
		}
		return s
	}
	return IDFiles{Passwd: def(f.Passwd, "/etc/passwd"), Group: def(f.Group, "/etc/group"),
		SubUID: def(f.SubUID, "/etc/subuid"), SubGID: def(f.SubGID, "/etc/subgid")}
}

// The bases FreeIDBase tries: above systemd-nspawn's container range
// (up to 0x6FFFFFFF) and below its "foreign" range (0x7FFE0000).
const (
	firstIDBase = 0x70000000
	idBaseTries = 256
)

// FreeIDBase is the first base (from 0x70000000, in steps of IDRange)
// whose range holds no uid of a user, no gid of a group and overlaps no
// subordinate range another user's rootless containers map: the same
// answer every time for the same files, so the containers' volumes keep
// their owner across runs.
func FreeIDBase(files IDFiles) (int, error) {
	files = files.orDefault()
	var taken [][2]int // [first, last]
	for _, f := range []string{files.Passwd, files.Group} {
		ids, err := idColumn(f)
		if err != nil {
			return 0, err
		}
		for _, id := range ids {
			taken = append(taken, [2]int{id, id})
		}
	}
	for _, f := range []string{files.SubUID, files.SubGID} {
		ranges, err := subRanges(f)
		if err != nil {
			return 0, err
		}
		taken = append(taken, ranges...)
	}
	for i := range idBaseTries {
		base := firstIDBase + i*IDRange
		last := base + IDRange - 1
		free := true
		for _, t := range taken {
			if t[0] <= last && base <= t[1] {
				free = false
				break
			}
		}
		if free {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no free range of %d ids from %#x for the containers' user namespace: %s, %s, %s and %s take them all",
		IDRange, firstIDBase, files.Passwd, files.Group, files.SubUID, files.SubGID)
}

// idColumn is the third field (the uid or gid) of each line of an
// /etc/passwd or /etc/group file; a missing file has none.
func idColumn(path string) ([]int, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	var ids []int
	for i, l := range lines {
		if skipLine(l) {
			continue
		}
		f := strings.Split(l, ":")
		if len(f) < 3 {
			continue // "+" NIS lines and the like
		}
		id, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: the id %q is not a number", path, i+1, f[2])
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// subRanges are the ranges of an /etc/subuid or /etc/subgid file
// (name:first:count).
func subRanges(path string) ([][2]int, error) {
	subs, err := ReadSubIDs(path)
	if err != nil {
		return nil, err
	}
	out := make([][2]int, 0, len(subs))
	for _, r := range subs {
		out = append(out, [2]int{r.First, r.First + r.Count - 1})
	}
	return out, nil
}

// SubIDRange is a line of /etc/subuid or /etc/subgid: the ids Owner (a
// user's name or uid) may map in its user namespaces (rootless podman).
type SubIDRange struct {
	Owner        string
	First, Count int
}

// ReadSubIDs reads an /etc/subuid or /etc/subgid file; a missing file has
// none.
func ReadSubIDs(path string) ([]SubIDRange, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	var out []SubIDRange
	for i, l := range lines {
		if skipLine(l) {
			continue
		}
		f := strings.Split(l, ":")
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want name:first:count", path, i+1)
		}
		first, err1 := strconv.Atoi(f[1])
		n, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || n <= 0 || first < 0 {
			return nil, fmt.Errorf("%s:%d: want name:first:count", path, i+1)
		}
		out = append(out, SubIDRange{Owner: f[0], First: first, Count: n})
	}
	return out, nil
}

// skipLine: a blank line or a comment.
func skipLine(l string) bool { return l == "" || l[0] == '#' }

// readLines are the file's lines, trimmed; a missing file has none.
func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		out = append(out, strings.TrimSpace(sc.Text()))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
