package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/config"
)

// DaemonRunner runs the engine with its local API in the foreground; the
// composition root (app) provides it.
// start also brings the stack up once the API serves.
type DaemonRunner func(ctx context.Context, l *config.Loaded, paths config.Paths, keyService string, exitOnStop, start bool, out io.Writer) error

// DoctorRunner runs the doctor's checks in-process when no engine runs.
type DoctorRunner func(ctx context.Context, l *config.Loaded, keyService string) []api.Check

func newDaemonCommand(env *Env, g *globals) *cobra.Command {
	var exitOnStop, start bool
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the engine in the foreground (headless; what `start` launches)",
		Long: `Run the engine and its local API (a unix socket only your user can use) in
the foreground. 'thesystem start' launches one in the background when none
runs; on macOS the app is the daemon. Ctrl-C or SIGTERM stops the stack and
exits.`,
		Example: `  thesystem daemon
  thesystem daemon & thesystem start`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := loadConfig(env, g)
			if err != nil {
				return err
			}
			if env.RunDaemon == nil {
				return errors.New("this build has no engine")
			}
			return env.RunDaemon(cmd.Context(), l, env.paths(), keyService(env), exitOnStop, start, env.Stdout)
		},
	}
	cmd.Flags().BoolVar(&exitOnStop, "exit-on-stop", false, "exit once the stack is stopped")
	_ = cmd.Flags().MarkHidden("exit-on-stop")
	cmd.Flags().BoolVar(&start, "start", false, "bring the stack up once the daemon runs (a login item's daemon)")
	return cmd
}

func (e *Env) paths() config.Paths {
	h, _ := os.UserHomeDir()
	return config.HostPaths(e.lookup, h)
}

func (e *Env) client() *api.Client {
	return &api.Client{Socket: e.paths().APISocket()}
}

// ensureDaemon returns a client of a running daemon, starting one in the
// background (detached, logging to the state dir) when none runs.
func ensureDaemon(ctx context.Context, env *Env, l *config.Loaded) (*api.Client, error) {
	c := env.client()
	if st, err := c.Status(ctx); err == nil {
		up := false // anything of the stack up, or on its way
		for _, comp := range st.Components {
			up = up || (comp.State != api.StateStopped && comp.State != api.StateFailed)
		}
		switch {
		case !up && st.ExitOnStop:
			// The daemon a failed start left: it has the thesystem.yaml and
			// the environment of then, which the user has likely fixed
			// since. A new one reads them again.
			fmt.Fprintf(env.Stderr, "replacing the engine daemon an earlier start left (pid %d), to read thesystem.yaml and this shell's environment again\n", st.PID)
			if err := c.Shutdown(ctx); err != nil && !errors.Is(err, api.ErrNoDaemon) {
				return nil, fmt.Errorf("stop the earlier daemon: %w", err)
			}
			if err := waitNoDaemon(ctx, c, 15*time.Second); err != nil {
				return nil, err
			}
		case !up:
			// The user's own daemon: its configuration and environment
			// are the ones it was started with.
			fmt.Fprintf(env.Stderr, "using the engine that runs already (pid %d, since %s), with the thesystem.yaml and the environment it was started with; "+
				"stop it first for a new one to read them again\n", st.PID, st.Since.Local().Format("15:04:05"))
			return c, nil
		default:
			return c, nil
		}
	} else if !errors.Is(err, api.ErrNoDaemon) {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	paths := env.paths()
	if err := os.MkdirAll(paths.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	logPath := paths.DaemonLog()
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("daemon log: %w", err)
	}
	defer func() { _ = logf.Close() }()
	args := []string{"daemon", "--exit-on-stop"}
	if l.File != "" {
		abs := l.File
		if wd, err := env.getwd(); err == nil && !strings.HasPrefix(abs, "/") {
			abs = wd + "/" + abs
		}
		args = append(args, "--config", abs)
	}
	// Not tied to this command's context: the daemon outlives it.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if wd, err := env.getwd(); err == nil {
		cmd.Dir = wd
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fmt.Fprintf(env.Stderr, "started the engine daemon (pid %d, log %s)\n", cmd.Process.Pid, displayPath(env, logPath))
	deadline := time.After(15 * time.Second)
	for {
		if _, err := c.Status(ctx); err == nil {
			return c, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("the daemon exited at once (%w); its log says:\n%s", err, tail(logPath, 10))
		case <-deadline:
			return nil, fmt.Errorf("the daemon did not answer within 15 s; its log says:\n%s", tail(logPath, 10))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitNoDaemon waits until no daemon answers.
func waitNoDaemon(ctx context.Context, c *api.Client, timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); ; {
		if _, err := c.Status(ctx); errors.Is(err, api.ErrNoDaemon) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the earlier daemon did not exit within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
