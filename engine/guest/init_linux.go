package guest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// superviseChild starts argv and waits for it, reaping every other process
// that ends up as our child (as PID 1, or as a child subreaper when run
// elsewhere, e.g. in tests) and forwarding signals to the child's group.
func superviseChild(argv []string, env []string, stdout, stderr io.Writer) (int, error) {
	if os.Getpid() != 1 {
		// Orphans of the runtime come to us, as they would to PID 1.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return 2, fmt.Errorf("become a subreaper: %w", err)
		}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return 127, fmt.Errorf("agent runtime: %w", err)
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGCHLD)
	defer signal.Stop(sigs)

	files := []*os.File{os.Stdin, fileOr(stdout, os.Stdout), fileOr(stderr, os.Stderr)}
	proc, err := os.StartProcess(path, argv, &os.ProcAttr{Env: env, Files: files,
		Sys: &syscall.SysProcAttr{Setpgid: true}})
	if err != nil {
		return 126, fmt.Errorf("start %s: %w", argv[0], err)
	}
	child := proc.Pid
	for {
		// Reap everything that has exited; the child's status ends us.
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if pid <= 0 || err != nil {
				break
			}
			if pid == child {
				_ = syscall.Kill(-child, syscall.SIGKILL) // what it left behind
				if ws.Signaled() {
					return 128 + int(ws.Signal()), nil
				}
				return ws.ExitStatus(), nil
			}
		}
		sig := <-sigs
		if sig == syscall.SIGCHLD {
			continue
		}
		_ = syscall.Kill(-child, sig.(syscall.Signal))
	}
}

// fileOr returns w if it is an *os.File, else def: a child's stdio must
// be a real file.
func fileOr(w io.Writer, def *os.File) *os.File {
	if f, ok := w.(*os.File); ok {
		return f
	}
	return def
}
