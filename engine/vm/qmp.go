package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// qemuRunState asks QEMU, over its QMP socket, whether the guest's CPUs
// run: "running", or why not ("io-error" when a write to the VM's disk
// failed, typically a full host disk; "paused", "internal-error",
// "guest-panicked"…). `limactl list` says Running for all of them.
func qemuRunState(ctx context.Context, sock string) (string, error) {
	ret, err := qmp(ctx, sock, "query-status")
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(ret, &st) != nil || st.Status == "" {
		return "", fmt.Errorf("QMP: query-status answered %s", ret)
	}
	return st.Status, nil
}

// qmp runs QMP commands (without arguments) over a new connection to
// QEMU's monitor socket and returns the last one's answer. QEMU serves
// one client at a time; Lima connects only for moments.
func qmp(ctx context.Context, sock string, cmds ...string) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.Close() }()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	r := bufio.NewReader(c)
	// A greeting, then each command's answer; events may come between.
	next := func(greeting bool) (json.RawMessage, error) {
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return nil, fmt.Errorf("QMP: %w", err)
			}
			var m struct {
				QMP    json.RawMessage `json:"QMP"`
				Return json.RawMessage `json:"return"`
				Error  *struct {
					Desc string `json:"desc"`
				} `json:"error"`
			}
			switch {
			case json.Unmarshal(line, &m) != nil:
			case m.Error != nil:
				return nil, fmt.Errorf("QMP: %s", m.Error.Desc)
			case greeting && m.QMP != nil:
				return m.QMP, nil
			case !greeting && m.Return != nil:
				return m.Return, nil
			}
		}
	}
	if _, err := next(true); err != nil {
		return nil, err
	}
	var ret json.RawMessage
	for _, cmd := range append([]string{"qmp_capabilities"}, cmds...) {
		if _, err := fmt.Fprintf(c, "{\"execute\":%q}\n", cmd); err != nil {
			return nil, fmt.Errorf("QMP: %w", err)
		}
		if ret, err = next(false); err != nil {
			return nil, fmt.Errorf("%s: %w", cmd, err)
		}
	}
	return ret, nil
}

// Diagnose says why a running VM may not answer, or "": QEMU has stopped
// its CPUs (a write to its disk failed: the host's disk is full), or the
// disk that holds it is nearly full. Only QEMU instances have a QMP
// socket; for the others it looks at the disk only.
func (l *Lima) Diagnose(ctx context.Context) string {
	dir := filepath.Join(l.Home, l.Instance)
	free, ferr := FreeBytes(dir)
	disk := ""
	if ferr == nil {
		disk = fmt.Sprintf("%s free on the disk that holds %s", HumanBytes(free), dir)
	}
	sock := filepath.Join(dir, "qmp.sock")
	if _, err := os.Stat(sock); err == nil {
		if st, err := qemuRunState(ctx, sock); err == nil && st != "running" {
			why := fmt.Sprintf("QEMU has stopped the VM's CPUs (%s)", st)
			if st == "io-error" {
				why += ": a write to the VM's disk failed, usually because the host's disk is full"
			}
			if disk != "" {
				why += "; " + disk
			}
			return why
		}
	}
	if ferr == nil && free < lowDisk {
		return "the host's disk is nearly full: " + disk
	}
	return ""
}

// lowDisk is the free space under which the VM's disk may fail to grow.
const lowDisk = 2 << 30

// FreeBytes is the space an unprivileged user may still use on the file
// system that holds path.
func FreeBytes(path string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil //nolint:unconvert // int64 on linux, uint32 on darwin
}

// HumanBytes is n in the largest binary unit that keeps it ≥ 1, e.g. 1.5 GiB.
func HumanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
