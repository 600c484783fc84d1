package vm

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// How long the first mount of the project may take, and the backoff
// between attempts to make it again.
const (
	linkReadyTimeout = time.Minute
	linkRetryMax     = 30 * time.Second
)

// linkProject mounts the host's dir (the project) read-only in the guest
// at GuestProjectDir, over an SSH connection of its own whose other end is
// the engine's SFTP server (ServeReadOnly: the project and nothing else of
// the host), and keeps it mounted: when the connection dies (the host
// slept, the network changed) it is made again, in the background, until
// ctx ends. It returns once the first mount answers.
func (l *Lima) linkProject(ctx context.Context, dir string) error {
	first := make(chan error, 1)
	go func() {
		delay := time.Second
		for n := 0; ; n++ {
			t0 := time.Now()
			err := l.projectSession(ctx, dir, func() {
				if n == 0 {
					first <- nil
				} else {
					note(l.opt, "mounted the project in the VM again (its link had died)")
				}
			})
			if ctx.Err() != nil {
				return
			}
			if n == 0 && time.Since(t0) < linkReadyTimeout {
				select {
				case first <- fmt.Errorf("mount the project in the VM: %w", err):
				default:
				}
			}
			note(l.opt, "the project's link to the VM ended (%v): making it again in %s", err, delay)
			if time.Since(t0) > time.Minute {
				delay = time.Second
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, linkRetryMax)
		}
	}()
	select {
	case err := <-first:
		return err
	case <-time.After(linkReadyTimeout):
		return errors.New("mount the project in the VM: not mounted after a minute")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// projectScript runs as root in the guest at the other end of the link:
// the shared tmpfs that holds the mount (made once a boot), what is left
// of a dead mount undone, then sshfs in the foreground, talking SFTP over
// the session's stdin and stdout (passive mode; "slave" before sshfs 3.7).
func projectScript() string {
	share, mnt := GuestProjectShare, GuestProjectDir
	return `set -eu
mkdir -p ` + share + `
mountpoint -q ` + share + ` || { mount -t tmpfs -o size=64k,mode=0755 thesystem-project ` + share + `; mount --make-shared ` + share + `; }
umount -l ` + mnt + ` 2>/dev/null || true
mkdir -p ` + mnt + `
mode=slave; sshfs -h 2>&1 | grep -q passive && mode=passive
exec sshfs -f -o "$mode,ro,allow_other" :/ ` + mnt + `
`
}

// projectSession is one life of the link: ssh runs sshfs in the guest,
// this process serves it the project; mounted is called once the mount
// answers in the guest. It returns when the connection ends.
func (l *Lima) projectSession(ctx context.Context, dir string, mounted func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg := filepath.Join(l.Home, l.Instance, "ssh.config")
	// A connection of its own (not Lima's master, which the forwards use
	// and Heal replaces), with keepalives so a dead peer is noticed.
	cmd := exec.CommandContext(ctx, "ssh", "-F", cfg, "-o", "ControlMaster=no", "-o", "ControlPath=none",
		"-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", l.sshHost(), "sudo sh -c "+shellQuote(projectScript()))
	cmd.Env = limactlEnv(os.Environ())
	cmd.WaitDelay = 2 * time.Second
	fromGuest, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	toGuest, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	var errb tail
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- ServeReadOnly(dir, pipeEnd{fromGuest, toGuest}) }()
	go func() {
		for ctx.Err() == nil {
			if _, err := l.ssh(ctx, l.sshHost(), "mountpoint", "-q", GuestProjectDir); err == nil {
				mounted()
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	err = cmd.Wait()
	cancel()
	if serr := <-served; serr != nil && err == nil {
		err = serr
	}
	if err == nil {
		err = errors.New("sshfs exited")
	}
	if tail := strings.TrimSpace(errb.String()); tail != "" {
		err = fmt.Errorf("%w: %s", err, tail)
	}
	return err
}

// WriteFiles writes files into dir on the guest's tmpfs over Lima's SSH,
// as Lima's user (the agents' uid): mode 0400 in 0700 dirs, each file
// replaced by a rename (a reader sees the old one or the new one), the
// other dirs beside dir removed first with only.
func (l *Lima) WriteFiles(ctx context.Context, dir string, files map[string][]byte, only bool) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if name != path.Base(name) || name == "." || name == ".." {
			return fmt.Errorf("write %s into the VM: %q is not a file name", dir, name)
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o400, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(files[name]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	parent := path.Dir(dir)
	clear := ""
	if only {
		clear = "find " + shellQuote(parent) + " -mindepth 1 -maxdepth 1 ! -name " + shellQuote(path.Base(dir)) + " -exec rm -rf {} +\n"
	}
	script := "set -eu\numask 077\n" +
		"[ -d " + GuestAgentsDir + " ] || sudo install -d -o \"$(id -u)\" -g \"$(id -g)\" -m 0700 " + GuestAgentsDir + "\n" +
		"mkdir -p " + shellQuote(dir) + "\n" + clear +
		"t=$(mktemp -d " + shellQuote(dir) + "/.in.XXXXXX)\n" +
		"tar -x -C \"$t\"\nfor f in \"$t\"/*; do mv -f \"$f\" " + shellQuote(dir) + "/; done\nrmdir \"$t\"\n"
	cfg := filepath.Join(l.Home, l.Instance, "ssh.config")
	if out, err := l.SSH.RunInput(ctx, &buf, "-F", cfg, l.sshHost(), "sh -c "+shellQuote(script)); err != nil {
		return fmt.Errorf("write %s into the VM: %w (%s)", dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// pipeEnd is two pipes as one connection's end.
type pipeEnd struct {
	io.Reader
	io.WriteCloser
}

// tail keeps the last 4 KiB a process wrote (exec's one copier writes
// it; it is read after Wait).
type tail struct{ buf []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.buf) }
