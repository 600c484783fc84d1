package menubar

import (
	"os"
	"testing"

	"github.com/godbus/dbus/v5"
)

// ServeOnSessionBus plays a desktop service in the tests: it exports obj
// at path as interface name and owns name on the session bus (a private
// one under .ci/with-keyring). Without a session bus it skips, or fails
// where one is promised (THESYSTEM_TEST_KEYRING=1). Exported for the
// menubar_test package's tests; it is not part of the package.
func ServeOnSessionBus(t *testing.T, name string, path dbus.ObjectPath, obj any) *dbus.Conn {
	t.Helper()
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		if os.Getenv("THESYSTEM_TEST_KEYRING") == "1" {
			t.Fatal("no D-Bus session bus under .ci/with-keyring")
		}
		t.Skip("no D-Bus session bus: run under .ci/with-keyring (make unit)")
	}
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.Export(obj, path, name); err != nil {
		t.Fatal(err)
	}
	if reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: %v %v", name, reply, err)
	}
	return conn
}
