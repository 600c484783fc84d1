package vm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDiagnoseStoppedCPUs runs a real QEMU (no machine, CPUs held at
// start) and asks it over QMP, as Diagnose does for a VM that Lima calls
// running but that does not answer.
func TestDiagnoseStoppedCPUs(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		if os.Getenv("THESYSTEM_TEST_QEMU") != "" {
			t.Fatal("THESYSTEM_TEST_QEMU is set but qemu-system-x86_64 is not on PATH")
		}
		t.Skip("qemu-system-x86_64 is not installed")
	}
	home := t.TempDir()
	l := &Lima{Instance: "thesystem", Home: home}
	dir := filepath.Join(home, l.Instance)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "qmp.sock")
	ctx, cancel := context.WithCancel(t.Context())
	cmd := exec.CommandContext(ctx, qemu, "-machine", "none", "-S", "-display", "none", "-nodefaults",
		"-qmp", "unix:"+sock+",server=on,wait=off")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("QEMU made no QMP socket")
		}
	}

	for _, tc := range []struct {
		name, cmd, state, diagnosis string
	}{
		{"held at start", "", "prelaunch", "QEMU has stopped the VM's CPUs (prelaunch); "},
		{"running", "cont", "running", ""},
		{"paused", "stop", "paused", "QEMU has stopped the VM's CPUs (paused); "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cmd != "" {
				if _, err := qmp(t.Context(), sock, tc.cmd); err != nil {
					t.Fatal(err)
				}
			}
			st, err := qemuRunState(t.Context(), sock)
			if err != nil || st != tc.state {
				t.Fatalf("state %q, %v; want %q", st, err, tc.state)
			}
			got := l.Diagnose(t.Context())
			free, err := FreeBytes(dir)
			if err != nil {
				t.Fatal(err)
			}
			if tc.diagnosis == "" && free < lowDisk {
				t.Skipf("this disk is nearly full (%s): Diagnose says so", HumanBytes(free))
			}
			if tc.diagnosis == "" && got != "" || tc.diagnosis != "" && !strings.HasPrefix(got, tc.diagnosis) ||
				tc.diagnosis != "" && !strings.Contains(got, "free on the disk that holds "+dir) {
				t.Errorf("Diagnose: %q, want %q…", got, tc.diagnosis)
			}
		})
	}
	if _, err := qmp(t.Context(), sock, "no-such-command"); err == nil || !strings.Contains(err.Error(), "no-such-command") {
		t.Errorf("an unknown command: %v", err)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 29: "1.5 GiB", 5 << 40: "5.0 TiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
