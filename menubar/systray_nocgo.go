//go:build darwin && !cgo

package menubar

import (
	"context"
	"errors"
)

// RunSystray needs cgo on macOS (AppKit): this build has no menu bar.
func RunSystray(context.Context, *Menu) error {
	return errors.New("this build of thesystem has no menu bar (built without cgo); use the CLI, or the app from `make app` on a Mac")
}
