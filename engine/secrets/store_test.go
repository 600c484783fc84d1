package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const planted = "sk-ant-api03-PLANTEDstoreKEY0123456789abcdef"

// testStore runs the same contract against any Store.
func testStore(t *testing.T, s Store) {
	t.Helper()
	ctx := t.Context()
	if names, err := s.List(ctx); err != nil || len(names) != 0 {
		t.Fatalf("fresh store List = %v, %v", names, err)
	}
	if _, err := s.Get(ctx, "anthropic"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
	if err := s.Delete(ctx, "anthropic"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete missing: %v", err)
	}
	if err := s.Set(ctx, "anthropic", NewKey(planted)); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "openai", NewKey("sk-proj-openaiKEY0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	k, err := s.Get(ctx, "anthropic")
	if err != nil || k.Reveal() != planted {
		t.Fatalf("Get = %v, %v", k.Fingerprint(), err)
	}
	// Set replaces.
	const rotated = "sk-ant-api03-ROTATEDstoreKEY0123456789abcdef"
	if err := s.Set(ctx, "anthropic", NewKey(rotated)); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.Get(ctx, "anthropic"); k.Reveal() != rotated {
		t.Fatalf("after replace: %s", k.Fingerprint())
	}
	names, err := s.List(ctx)
	if err != nil || !reflect.DeepEqual(names, []string{"anthropic", "openai"}) {
		t.Fatalf("List = %v, %v", names, err)
	}
	all, err := LoadAll(ctx, s)
	if err != nil || len(all) != 2 || all["openai"].IsZero() {
		t.Fatalf("LoadAll = %d keys, %v", len(all), err)
	}
	for _, p := range []string{"anthropic", "openai"} {
		if err := s.Delete(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if names, _ := s.List(ctx); len(names) != 0 {
		t.Fatalf("after delete List = %v", names)
	}
}

// TestSecretService runs against a real Secret Service (gnome-keyring under
// dbus-run-session, as `make test` sets up). Where there is none the test
// skips, unless THESYSTEM_TEST_KEYRING=1 says it must run.
func TestSecretService(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("not linux")
	}
	service := fmt.Sprintf("thesystem-test-%d", time.Now().UnixNano())
	s, err := Open(t.Context(), service)
	if err != nil {
		if os.Getenv("THESYSTEM_TEST_KEYRING") == "1" {
			t.Fatalf("THESYSTEM_TEST_KEYRING=1 but: %v", err)
		}
		t.Skipf("no Secret Service here: %v", err)
	}
	testStore(t, s)
}

func TestSecurityCLI(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("FAKE_SECURITY_DIR", dir)
	fake, err := filepath.Abs("testdata/fake-security")
	if err != nil {
		t.Fatal(err)
	}
	s := &securityCLI{path: fake, service: "thesystem-test"}
	testStore(t, s)

	argv, err := os.ReadFile(filepath.Join(dir, "argv.log"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(argv), "PLANTED") || strings.Contains(string(argv), "ROTATED") {
		t.Fatalf("a key reached security's argv:\n%s", argv)
	}
	stdin, _ := os.ReadFile(filepath.Join(dir, "stdin.log"))
	if !strings.Contains(string(stdin), planted) {
		t.Fatalf("the key did not travel on stdin: %q", stdin)
	}
	if err := s.Set(t.Context(), "anthropic", NewKey("sk-ant-x y")); err == nil {
		t.Fatal("a key with a space could inject a security command")
	}
}

func TestOpenWithoutDBus(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("not linux")
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	_, err := Open(context.Background(), "x")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "dbus-run-session") {
		t.Fatalf("Open without a bus: %v", err)
	}
}

func TestKeyNeverPrints(t *testing.T) {
	k := NewKey(planted)
	type holder struct {
		Name string
		K    Key
	}
	outs := []string{
		fmt.Sprint(k), fmt.Sprintf("%s %v %q %x %+v %#v %d", k, k, k, k, k, k, k),
		fmt.Sprintf("%+v", holder{"a", k}), fmt.Sprintf("%#v", holder{"a", k}), k.String(),
		fmt.Errorf("wrapped: %v", k).Error(),
	}
	for _, o := range outs {
		if strings.Contains(o, "PLANTED") {
			t.Errorf("key printed: %q", o)
		}
	}
	if b, err := json.Marshal(holder{"a", k}); err == nil || strings.Contains(string(b), "PLANTED") {
		t.Errorf("json.Marshal = %s, %v; want an error", b, err)
	}
	if k.Fingerprint() == "" || strings.Contains(k.Fingerprint(), "PLANTED") || len(k.Fingerprint()) != len("sha256:")+12 {
		t.Errorf("fingerprint %q", k.Fingerprint())
	}
	if (Key{}).Fingerprint() != "" || !(Key{}).IsZero() {
		t.Error("zero key")
	}
}

// TestSecretServiceManySessions: about one Secret Service session in 256
// derives a key the service does not (the library drops the shared
// secret's leading zero bytes; seen in CI as "The secret was transferred
// or encrypted in an invalid way"). Over 600 new sessions, one such is
// nearly certain (91 %): each store and read must still work.
func TestSecretServiceManySessions(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("not linux")
	}
	service := fmt.Sprintf("thesystem-test-%d", time.Now().UnixNano())
	first, err := Open(t.Context(), service)
	if err != nil {
		if os.Getenv("THESYSTEM_TEST_KEYRING") == "1" {
			t.Fatalf("THESYSTEM_TEST_KEYRING=1 but: %v", err)
		}
		t.Skipf("no Secret Service here: %v", err)
	}
	defer func() { _ = first.Delete(context.Background(), "anthropic") }()
	want := "sk-ant-api03-" + strings.Repeat("s", 40)
	for i := range 600 {
		s, err := Open(t.Context(), service) // a new session each time
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := s.Set(t.Context(), "anthropic", NewKey(want)); err != nil {
				t.Fatalf("session %d: store: %v", i, err)
			}
			continue
		}
		k, err := s.Get(t.Context(), "anthropic")
		if err != nil || k.Reveal() != want {
			t.Fatalf("session %d: read %v: %v", i, k.Reveal() == want, err)
		}
	}
}
