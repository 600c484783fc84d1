package doctor

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/sandbox"
)

// currentAccount is this process's user.
func currentAccount() *Account {
	a := &Account{UID: os.Getuid()}
	if u, err := user.Current(); err == nil {
		a.Name = u.Username
	}
	return a
}

// rootlessChecks are what a plain user's podman needs to run the
// containers: newuidmap and newgidmap, and a range of at least
// sandbox.IDRange subordinate uids and gids (the containers' ids other
// than the agents' own land there).
func rootlessChecks(look func(string) (string, error), a Account) []api.Check {
	var out []api.Check
	var missing []string
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if _, err := look(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		out = append(out, api.Check{ID: "rootless.idmap", Status: api.CheckFail,
			Detail: strings.Join(missing, " and ") + " not found: podman run by " + a.label() + " (not root) maps the containers' ids with them",
			Fix:    "install uidmap (Debian/Ubuntu: sudo apt-get install uidmap; Fedora: sudo dnf install shadow-utils)"})
	} else {
		out = append(out, api.Check{ID: "rootless.idmap", Status: api.CheckOK, Detail: "newuidmap and newgidmap found (rootless podman)"})
	}
	files := map[string]string{"uid": a.SubUID, "gid": a.SubGID}
	if files["uid"] == "" {
		files["uid"] = "/etc/subuid"
	}
	if files["gid"] == "" {
		files["gid"] = "/etc/subgid"
	}
	var have, lack []string
	var problem error
	next := 100000 // where a range no one has starts
	for _, kind := range []string{"uid", "gid"} {
		subs, err := sandbox.ReadSubIDs(files[kind])
		if err != nil {
			problem = err
			continue
		}
		best := 0
		for _, r := range subs {
			next = max(next, r.First+r.Count)
			if r.Owner == a.Name || r.Owner == strconv.Itoa(a.UID) {
				best = max(best, r.Count)
			}
		}
		if best >= sandbox.IDRange {
			have = append(have, fmt.Sprintf("%d %ss", best, kind))
		} else {
			lack = append(lack, files[kind])
		}
	}
	switch {
	case problem != nil:
		out = append(out, api.Check{ID: "rootless.subids", Status: api.CheckFail, Detail: problem.Error(),
			Fix: "correct the file: each line is name:first:count"})
	case len(lack) > 0:
		name := a.Name
		if name == "" {
			name = strconv.Itoa(a.UID)
		}
		r := fmt.Sprintf("%d-%d", next, next+sandbox.IDRange-1) // after every range given

		out = append(out, api.Check{ID: "rootless.subids", Status: api.CheckFail,
			Detail: fmt.Sprintf("%s has no range of %d subordinate ids in %s: rootless podman cannot map the containers' ids", a.label(), sandbox.IDRange, strings.Join(lack, " and ")),
			Fix:    fmt.Sprintf("sudo usermod --add-subuids %s --add-subgids %s %s, then podman system migrate", r, r, name)})
	default:
		out = append(out, api.Check{ID: "rootless.subids", Status: api.CheckOK, Detail: a.label() + " has " + strings.Join(have, " and ") + " to map (rootless podman)"})
	}
	return append(out, limitsCheck(a))
}

// limitsCheck: rootless podman applies the containers' memory, CPU and
// pids limits only on cgroups v2, in a cgroup systemd delegates to the
// user with those controllers; elsewhere it runs the containers without
// them (its warning: "Resource limits are not supported and ignored").
func limitsCheck(a Account) api.Check {
	root := a.Cgroups
	if root == "" {
		root = "/sys/fs/cgroup"
	}
	const id = "rootless.limits"
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
		return api.Check{ID: id, Status: api.CheckWarn,
			Detail: "cgroups v1: rootless podman runs the containers without their memory, CPU and pids limits (no network, no keys and no capabilities still hold)",
			Fix:    "boot with cgroups v2 (systemd.unified_cgroup_hierarchy=1), or run as root"}
	}
	svc := filepath.Join(root, "user.slice", fmt.Sprintf("user-%d.slice", a.UID), fmt.Sprintf("user@%d.service", a.UID), "cgroup.controllers")
	b, err := os.ReadFile(svc)
	have := strings.Fields(string(b))
	var lack []string
	for _, c := range []string{"memory", "pids", "cpu"} {
		if !slices.Contains(have, c) {
			lack = append(lack, c)
		}
	}
	if err != nil || len(lack) > 0 {
		what := "no systemd user session (" + svc + ")"
		if err == nil {
			what = "systemd does not delegate " + strings.Join(lack, ", ") + " to " + a.label()
		}
		return api.Check{ID: id, Status: api.CheckWarn,
			Detail: what + ": the containers' limits of those may not apply",
			Fix:    "log in through systemd-logind (a desktop or ssh session), and delegate them: a drop-in with Delegate=memory pids cpu for user@.service"}
	}
	return api.Check{ID: id, Status: api.CheckOK, Detail: "cgroups v2, memory, pids and cpu delegated to " + a.label() + ": the containers' limits apply"}
}

func (a Account) label() string {
	if a.Name != "" {
		return a.Name
	}
	return "uid " + strconv.Itoa(a.UID)
}
