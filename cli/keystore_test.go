package cli

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
)

// bareSecretService starts a D-Bus session of its own with a Secret
// Service that has no default (login) collection, as for a new account or
// a headless session: gnome-keyring, never unlocked. Its bus address.
func bareSecretService(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("gnome-keyring-daemon"); err != nil {
		if os.Getenv("THESYSTEM_TEST_KEYRING") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	addr := startBus(t, exec.CommandContext(t.Context(), "dbus-daemon", "--session", "--nofork", "--print-address=1"))
	kr := exec.CommandContext(t.Context(), "gnome-keyring-daemon", "--foreground", "--components=secrets")
	kr.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+addr, "XDG_DATA_HOME="+t.TempDir(), "DISPLAY=", "WAYLAND_DISPLAY=")
	if err := kr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kr.Process.Kill(); _ = kr.Wait() })
	time.Sleep(500 * time.Millisecond) // it claims its name on the bus
	return addr
}

// startBus starts bus, a `dbus-daemon --session --nofork
// --print-address=1` command, until the test ends: its address.
func startBus(t *testing.T, bus *exec.Cmd) string {
	t.Helper()
	out, err := bus.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Process.Kill(); _ = bus.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(addr)
}

// TestKeyStoreWithoutLoginKeyring: a Secret Service without a default
// collection reads as no keys (the stack starts, its proxy healthy), and
// storing a key, which needs one made through a desktop's password
// prompt, says what to do; with no key store at all the stack starts too,
// the proxy degraded with the reason, and the doctor says why.
func TestKeyStoreWithoutLoginKeyring(t *testing.T) {
	d := newDaemonEnv(t)
	d.env = append(d.env, "DBUS_SESSION_BUS_ADDRESS="+bareSecretService(t)) // the last one wins
	if r := d.run(t, "keys", "list"); r.code != 0 || !strings.Contains(r.stdout, "no keys stored") {
		t.Errorf("keys list: %+v", r)
	}
	r := runIn(t, d.dir, d.env, "sk-ant-api03-PLANTEDnoLOGIN0123456789abcdefgh", "keys", "set", "anthropic")
	if r.code == 0 || !strings.Contains(r.stderr, "the Secret Service has no default keyring and could not make one") ||
		!strings.Contains(r.stderr, "gnome-keyring-daemon --unlock") || strings.Contains(r.stderr, "PLANTED") {
		t.Errorf("keys set without a default keyring: %+v", r)
	}
	if r := d.run(t, "start"); r.code != 0 {
		t.Fatalf("start without a default keyring: %+v", r)
	}
	if c := componentOf(t, d, api.ComponentProxy); c.State != api.StateHealthy {
		t.Errorf("the proxy without a default keyring: %+v", c)
	}
	if r := d.run(t, "stop"); r.code != 0 {
		t.Fatalf("stop: %+v", r)
	}

	// No key store at all (no D-Bus session).
	d.env = append(d.env, "DBUS_SESSION_BUS_ADDRESS=")
	if r := d.run(t, "start"); r.code != 0 {
		t.Fatalf("start without a key store: %+v", r)
	}
	defer d.run(t, "stop")
	var c api.Component
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if c = componentOf(t, d, api.ComponentProxy); c.State == api.StateDegraded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxy without a key store: %+v", c)
		}
	}
	if !strings.HasPrefix(c.Detail, "no key store (") || !strings.Contains(c.Detail, "DBUS_SESSION_BUS_ADDRESS is unset") || c.Restarts != 0 {
		t.Errorf("the proxy without a key store: %+v", c)
	}
	t.Logf("$ thesystem status → %s %s: %s", c.Name, c.State, c.Detail)
	doc := d.run(t, "doctor", "--json")
	var out struct{ Checks []api.Check }
	_ = json.Unmarshal([]byte(doc.stdout), &out)
	found := false
	for _, ch := range out.Checks {
		if ch.ID == "keys" {
			found = ch.Status == api.CheckFail && strings.Contains(ch.Detail, "D-Bus")
			t.Logf("$ thesystem doctor → keys %s: %s (fix: %s)", ch.Status, ch.Detail, ch.Fix)
		}
	}
	if !found {
		t.Errorf("the doctor does not say why: %+v", doc)
	}
}

// componentOf is a component's status, from `status --json`.
func componentOf(t *testing.T, d *daemonEnv, name string) api.Component {
	t.Helper()
	r := d.run(t, "status", "--json")
	var st api.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v %+v", err, r)
	}
	for _, c := range st.Components {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s in %+v", name, st.Components)
	return api.Component{}
}

// TestFailedStartNamesItsCause: a component that exits before it is ready
// (the podman service, given a flag it does not know) fails the start
// with its own last lines in the error; the next start, the cause fixed,
// replaces the daemon the failed one left (so it reads the configuration
// and the environment again); and `thesystem logs` shows the failure's
// lines after the daemons are gone, from what they kept on disk.
func TestFailedStartNamesItsCause(t *testing.T) {
	d := newDaemonEnv(t)
	args := envValue(d.env, "THESYSTEM_PODMAN_ARGS")
	d.env = append(d.env, "THESYSTEM_PODMAN_ARGS="+args+" --no-such-flag-thesystem")
	r := d.run(t, "start")
	if r.code == 0 || !strings.Contains(r.stderr, "exited before it was ready") || !strings.Contains(r.stderr, "its last output: ") ||
		!strings.Contains(r.stderr, "no-such-flag-thesystem") {
		t.Fatalf("start: %+v", r)
	}
	// Fixed (the environment, as a user fixes theirs), a new start reads it
	// again: the daemon the failed start left is replaced.
	d.env = append(d.env, "THESYSTEM_PODMAN_ARGS="+args)
	if r2 := d.run(t, "start"); r2.code != 0 || !strings.Contains(r2.stderr, "replacing the engine daemon an earlier start left") {
		t.Fatalf("start once fixed: %+v", r2)
	}
	if r := d.run(t, "stop"); r.code != 0 {
		t.Fatalf("stop: %+v", r)
	}
	// No daemon now: the logs come from what the daemons kept on disk,
	// the failed one's too.
	logs := d.run(t, "logs", "vm", "-n", "500")
	if logs.code != 0 || !strings.Contains(logs.stdout, "no-such-flag-thesystem") || !strings.Contains(logs.stderr, "the engine is not running: its last lines, from ") {
		t.Errorf("logs after the failed start: %+v", logs)
	}
	t.Logf("$ thesystem start\n%s\n$ thesystem logs vm\n%s", r.stderr[max(0, len(r.stderr)-600):], logs.stdout)
}
