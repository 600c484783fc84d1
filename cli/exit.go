package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/thesystem-dev/thesystem/engine/api"
	"github.com/thesystem-dev/thesystem/engine/config"
)

// Exit codes.
const (
	ExitOK        = 0 // success
	ExitError     = 1 // the command failed (or is not available yet)
	ExitMisconfig = 2 // bad configuration, flags or arguments
)

// usageError marks misuse of the command line: unknown command or flag,
// wrong number of arguments, an argument outside its allowed values.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// usageArgs wraps a cobra argument validator so its failures exit 2.
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return &usageError{err}
		}
		return nil
	}
}

// notYetError is returned by commands whose engine part has not landed.
// It says so plainly, exits 1, and never pretends to have done the work.
type notYetError struct {
	what  string // what the command would do
	issue int    // the issue that delivers it
}

func (e *notYetError) Error() string {
	return fmt.Sprintf("not available yet: %s arrives with issue #%d; nothing was done", e.what, e.issue)
}

func notYet(what string, issue int) error { return &notYetError{what: what, issue: issue} }

func exitCode(err error) int {
	var cerr *config.Error
	var uerr *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &cerr), errors.As(err, &uerr),
		errors.Is(err, api.ErrUnknownComponent), errors.Is(err, api.ErrBadRequest):
		return ExitMisconfig
	default:
		return ExitError
	}
}
