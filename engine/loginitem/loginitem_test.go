package loginitem

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

func TestLaunchAgent(t *testing.T) {
	o := Options{Executable: "/Applications/The System.app/Contents/MacOS/TheSystem", Config: "/Users/me/p&q/thesystem.yaml", StartStack: true}
	b := LaunchAgent(o, "/Users/me/Library/Logs/TheSystem.log")
	// Well-formed XML, the arguments escaped.
	dec := xml.NewDecoder(strings.NewReader(string(b)))
	for {
		if _, err := dec.Token(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("not well-formed: %v\n%s", err, b)
			}
			break
		}
	}
	for _, want := range []string{
		"<string>dev.thesystem.TheSystem</string>",
		"<string>/Applications/The System.app/Contents/MacOS/TheSystem</string>\n\t\t<string>app</string>\n\t\t<string>--config</string>\n\t\t<string>/Users/me/p&amp;q/thesystem.yaml</string>\n\t\t<string>--start</string>",
		"<key>RunAtLoad</key>\n\t<true/>",
		"<key>KeepAlive</key>\n\t<dict>\n\t\t<key>SuccessfulExit</key>\n\t\t<false/>", // only after a crash
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("plist lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(LaunchAgent(Options{Executable: "/x"}, "/l")), "--start") {
		t.Error("--start without StartStack")
	}
}

func TestLinuxFiles(t *testing.T) {
	o := Options{Executable: "/home/me/bin/the system", Config: "/home/me/p/thesystem.yaml"}
	if got := string(Autostart(o)); !strings.Contains(got, `Exec="/home/me/bin/the system" app --config /home/me/p/thesystem.yaml`+"\n") ||
		!strings.HasPrefix(got, "[Desktop Entry]\nType=Application\n") {
		t.Errorf("autostart:\n%s", got)
	}
	o.StartStack = true
	if got := string(Unit(o)); !strings.Contains(got, `ExecStart="/home/me/bin/the system" daemon --config /home/me/p/thesystem.yaml --start`) ||
		!strings.Contains(got, "Restart=on-failure") || !strings.Contains(got, "WantedBy=default.target") {
		t.Errorf("unit:\n%s", got)
	}
}

func TestSetEnabled(t *testing.T) {
	for _, tc := range []struct {
		name    string
		desktop bool
		path    func(string) string
		calls   string
	}{
		{"desktop session", true, AutostartPath, ""},
		{"headless", false, UnitPath, "systemctl --user enable thesystem.service|systemctl --user disable thesystem.service|"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			var calls strings.Builder
			o := Options{Executable: "/usr/bin/thesystem", Home: home, Desktop: tc.desktop,
				Run: func(_ context.Context, name string, args ...string) ([]byte, error) {
					calls.WriteString(name + " " + strings.Join(args, " ") + "|")
					return nil, nil
				}}
			if on, _ := o.Enabled(); on {
				t.Fatal("enabled before")
			}
			if err := o.SetEnabled(true); err != nil {
				t.Fatal(err)
			}
			if on, _ := o.Enabled(); !on || o.Path() != tc.path(home) {
				t.Fatalf("not enabled at %s", o.Path())
			}
			if err := o.SetEnabled(false); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(tc.path(home)); !errors.Is(err, os.ErrNotExist) {
				t.Error("still there after off")
			}
			if calls.String() != tc.calls {
				t.Errorf("calls %q", calls.String())
			}
		})
	}
	// systemctl missing: the unit is written, the error says what to do.
	o := Options{Executable: "/usr/bin/thesystem", Home: t.TempDir(),
		Run: func(context.Context, string, ...string) ([]byte, error) {
			return []byte("Failed to connect to bus"), errors.New("exit status 1")
		}}
	if err := o.SetEnabled(true); err == nil || !strings.Contains(err.Error(), "enable it in your session") {
		t.Errorf("SetEnabled = %v", err)
	}
}
