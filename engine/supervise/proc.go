package supervise

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultStopTimeout is how long a process has between SIGTERM and SIGKILL.
const DefaultStopTimeout = 5 * time.Second

// ProcService runs a command as a component, in a process group of its
// own. Its stdout and stderr go to Logs line by line. When ctx ends the
// group gets SIGTERM, then SIGKILL after StopTimeout; when the leader
// exits anything left in the group is killed, so nothing is orphaned.
type ProcService struct {
	Name        string
	Argv        []string
	Env         []string // nil: the parent's environment
	Dir         string
	Logs        *Logs
	StopTimeout time.Duration

	pid atomic.Int64
}

// PID is the running process's id, 0 when none runs.
func (p *ProcService) PID() int { return int(p.pid.Load()) }

// Serve runs the command until it exits or ctx ends.
func (p *ProcService) Serve(ctx context.Context) error {
	if len(p.Argv) == 0 {
		return Permanent(errors.New("no command"))
	}
	stop := p.StopTimeout
	if stop <= 0 {
		stop = DefaultStopTimeout
	}
	cmd := exec.CommandContext(ctx, p.Argv[0], p.Argv[1:]...)
	cmd.Env = p.Env
	cmd.Dir = p.Dir
	cmd.SysProcAttr = procAttr()
	// On cancellation: SIGTERM to the whole group; SIGKILL after the grace.
	cmd.Cancel = func() error {
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		time.AfterFunc(stop, func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
		return nil
	}
	cmd.WaitDelay = stop + time.Second
	var stdout, stderr *LineWriter
	if p.Logs != nil {
		stdout, stderr = p.Logs.Writer(p.Name, "stdout"), p.Logs.Writer(p.Name, "stderr")
		cmd.Stdout, cmd.Stderr = stdout, stderr
		defer func() { _ = stdout.Close(); _ = stderr.Close() }()
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.EACCES) {
			return Permanent(fmt.Errorf("start %s: %w", strings.Join(p.Argv, " "), err))
		}
		return fmt.Errorf("start %s: %w", p.Argv[0], err)
	}
	pgid := cmd.Process.Pid
	p.pid.Store(int64(pgid))
	err := cmd.Wait()
	p.pid.Store(0)
	// The leader is gone; whatever it left in its group goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		return errors.New("exited with status 0")
	}
	return fmt.Errorf("exited: %w", err)
}
