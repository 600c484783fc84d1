package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/config"
)

// AppRunner runs app mode: the engine, its local API and the menu-bar
// menu in one process; start also brings the stack up.
type AppRunner func(ctx context.Context, l *config.Loaded, paths config.Paths, keyService string, start bool) error

// LoginItem starts TheSystem at login.
type LoginItem interface {
	Enabled() (bool, error)
	SetEnabled(on bool) error
	Path() string
}

// LoginItemFactory makes the login item for a configuration; start also
// starts the stack at login.
type LoginItemFactory func(l *config.Loaded, start bool) (LoginItem, error)

func newAppCommand(env *Env, g *globals) *cobra.Command {
	var start bool
	cmd := &cobra.Command{
		Use:   "app",
		Short: "Run the menu-bar app: the engine, its API and the menu in one process",
		Long: `Run TheSystem as the menu-bar app (what TheSystem.app does on macOS; on
Linux, a tray icon through the desktop's StatusNotifierItem host): the
engine and its local API in this process, and a menu showing the stack's
state with Start, Stop, Restart, Open Dashboard, Set API Key, Show Logs,
Launch at Login, Doctor and Quit. The CLI talks to it as to a daemon.`,
		Example: `  thesystem app
  thesystem app --start   # and bring the stack up`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := loadConfig(env, g)
			if err != nil {
				return err
			}
			if env.RunApp == nil {
				return errors.New("this build has no app mode")
			}
			return env.RunApp(cmd.Context(), l, env.paths(), keyService(env), start)
		},
	}
	cmd.Flags().BoolVar(&start, "start", false, "bring the stack up once the app runs")
	return cmd
}

func newLoginItemCommand(env *Env, g *globals) *cobra.Command {
	var start, asJSON bool
	cmd := &cobra.Command{
		Use:   "login-item on|off|status",
		Short: "Start TheSystem when you log in (or stop doing so)",
		Long: `Install or remove the login item: on macOS a LaunchAgent that opens the app
(kept alive only after a crash), on Linux an XDG autostart entry in a
desktop session or a systemd --user unit for the engine daemon otherwise.
With --start the stack comes up at login too; without, the app starts with
the stack stopped. The menu's "Launch at Login" does the same.`,
		Example: `  thesystem login-item on
  thesystem login-item on --start
  thesystem login-item status --json
  thesystem login-item off`,
		Args:      usageArgs(cobra.ExactArgs(1)),
		ValidArgs: []string{"on", "off", "status"},
		RunE: func(_ *cobra.Command, args []string) error {
			op := args[0]
			if op != "on" && op != "off" && op != "status" {
				return usagef("login-item: %q is not one of on, off, status", op)
			}
			l, err := loadConfig(env, g)
			if err != nil {
				return err
			}
			if env.LoginItem == nil {
				return errors.New("this build has no login item support")
			}
			item, err := env.LoginItem(l, start)
			if err != nil {
				return err
			}
			if op != "status" {
				if err := item.SetEnabled(op == "on"); err != nil {
					return err
				}
			}
			on, err := item.Enabled()
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONTo(env.Stdout, map[string]any{"enabled": on, "path": item.Path()})
			}
			state := "off"
			if on {
				state = "on"
			}
			fmt.Fprintf(env.Stdout, "login item %s (%s)\n", state, item.Path())
			return nil
		},
	}
	cmd.Flags().BoolVar(&start, "start", false, "also start the stack at login")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newInstallCLICommand(env *Env) *cobra.Command {
	var dir string
	var force bool
	cmd := &cobra.Command{
		Use:   "install-cli",
		Short: "Link the thesystem command into a directory on your PATH",
		Long: `Link the thesystem command into a directory on your PATH: from the app
bundle, TheSystem.app/Contents/Resources/bin/thesystem (so the CLI follows
the app's updates); otherwise this binary. The default directory is
/usr/local/bin when you can write there, else ~/.local/bin. An existing
file that is not such a link is left alone unless --force is given.`,
		Example: `  thesystem install-cli
  thesystem install-cli --dir ~/bin`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(_ *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			src, err := cliSource(exe)
			if err != nil {
				return err
			}
			if dir == "" {
				dir = defaultBinDir(env)
			}
			dst := filepath.Join(dir, "thesystem")
			if err := linkCLI(src, dst, force); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "linked %s → %s\n", dst, src)
			path, _ := env.lookup("PATH")
			if !strings.Contains(":"+path+":", ":"+dir+":") {
				fmt.Fprintf(env.Stderr, "note: %s is not on your PATH\n", dir)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to link into (default /usr/local/bin, else ~/.local/bin)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing file")
	return cmd
}

// cliSource is what the CLI link points at: the bundle's
// Contents/Resources/bin/thesystem when exe runs from TheSystem.app, else
// exe itself.
func cliSource(exe string) (string, error) {
	resolved, err := filepath.EvalSymlinks(exe)
	if err != nil {
		return "", err
	}
	macos := filepath.Dir(resolved)
	if filepath.Base(macos) == "MacOS" && filepath.Base(filepath.Dir(macos)) == "Contents" {
		bundled := filepath.Join(filepath.Dir(macos), "Resources", "bin", "thesystem")
		if _, err := os.Stat(bundled); err == nil {
			return bundled, nil
		}
	}
	return resolved, nil
}

func defaultBinDir(env *Env) string {
	const system = "/usr/local/bin"
	if f, err := os.CreateTemp(system, ".thesystem-probe-*"); err == nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return system
	}
	home, _ := env.lookup("HOME")
	return filepath.Join(home, ".local", "bin")
}

// linkCLI makes dst a symlink to src, replacing an earlier link (or,
// with force, any file).
func linkCLI(src, dst string, force bool) error {
	if fi, err := os.Lstat(dst); err == nil {
		if fi.Mode()&os.ModeSymlink == 0 && !force {
			return fmt.Errorf("%s exists and is not a link: remove it or use --force", dst)
		}
		if err := os.Remove(dst); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.Symlink(src, dst)
}
