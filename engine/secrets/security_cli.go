package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/thesystem-dev/thesystem/engine/provider"
)

// securityCLI keeps keys in the macOS Keychain through /usr/bin/security,
// for darwin builds without cgo. The key travels only on the tool's stdin
// (`security -i` reads commands there), never on its argv, where any user
// could read it in the process list. It is shared code so that it is tested
// on Linux against a stand-in `security`.
type securityCLI struct {
	path    string // /usr/bin/security
	service string
}

// exitNotFound is security's exit status for errSecItemNotFound.
const exitNotFound = 44

func (s *securityCLI) run(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.path, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == exitNotFound:
		return "", ErrNotFound
	case err != nil:
		// security's stderr names the item, never the secret.
		return "", fmt.Errorf("security %s: %w: %s", args[0], err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (s *securityCLI) Get(ctx context.Context, p string) (Key, error) {
	out, err := s.run(ctx, "", "find-generic-password", "-s", s.service, "-a", p, "-w")
	if errors.Is(err, ErrNotFound) {
		return Key{}, fmt.Errorf("%s: %w", p, ErrNotFound)
	}
	if err != nil {
		return Key{}, err
	}
	return NewKey(strings.TrimRight(out, "\r\n")), nil
}

func (s *securityCLI) Set(ctx context.Context, p string, key Key) error {
	k := key.Reveal()
	// security -i splits its input on white space and honours quotes; a key
	// with either could inject another command, so refuse it.
	if strings.ContainsAny(k, " \t\r\n\"'\\") || strings.ContainsAny(p+s.service, " \t\r\n\"'\\") {
		return errors.New("security: the key or provider name contains white space or quotes")
	}
	cmd := fmt.Sprintf("add-generic-password -U -s %s -a %s -l TheSystem-%s -w %s\n", s.service, p, p, k)
	_, err := s.run(ctx, cmd, "-i")
	return err
}

func (s *securityCLI) Delete(ctx context.Context, p string) error {
	_, err := s.run(ctx, "", "delete-generic-password", "-s", s.service, "-a", p)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%s: %w", p, ErrNotFound)
	}
	return err
}

// List asks for each known provider: security has no query by service
// alone that does not dump the whole keychain.
func (s *securityCLI) List(ctx context.Context) ([]string, error) {
	var out []string
	for _, pr := range provider.All() {
		_, err := s.run(ctx, "", "find-generic-password", "-s", s.service, "-a", pr.Name)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return nil, err
		default:
			out = append(out, pr.Name)
		}
	}
	return out, nil
}
