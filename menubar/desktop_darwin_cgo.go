//go:build darwin && cgo

package menubar

import (
	"context"

	"github.com/progrium/darwinkit/dispatch"
	"github.com/progrium/darwinkit/macos/appkit"
	"github.com/progrium/darwinkit/macos/foundation"
)

// AskSecret asks in an NSAlert with an NSSecureTextField (the typed key
// is never shown), on the main thread as AppKit requires.
func (macDesktop) AskSecret(ctx context.Context, title, prompt string) (string, bool, error) {
	type answer struct {
		secret string
		ok     bool
	}
	done := make(chan answer, 1)
	dispatch.MainQueue().DispatchAsync(func() {
		alert := appkit.NewAlert()
		alert.SetMessageText(title)
		alert.SetInformativeText(prompt)
		alert.AddButtonWithTitle("Save")
		alert.AddButtonWithTitle("Cancel")
		field := appkit.NewSecureTextFieldWithFrame(foundation.Rect{Size: foundation.Size{Width: 320, Height: 24}})
		alert.SetAccessoryView(field)
		// A menu-bar app is never frontmost on its own.
		appkit.Application_SharedApplication().ActivateIgnoringOtherApps(true)
		resp := alert.RunModal()
		done <- answer{field.StringValue(), resp == appkit.AlertFirstButtonReturn}
	})
	select {
	case a := <-done:
		return a.secret, a.ok, nil
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
}

// Confirm asks in an NSAlert whose first button is the action.
func (macDesktop) Confirm(ctx context.Context, title, message, action string) (bool, error) {
	done := make(chan bool, 1)
	dispatch.MainQueue().DispatchAsync(func() {
		alert := appkit.NewAlert()
		alert.SetMessageText(title)
		alert.SetInformativeText(message)
		alert.AddButtonWithTitle(action)
		alert.AddButtonWithTitle("Cancel")
		appkit.Application_SharedApplication().ActivateIgnoringOtherApps(true)
		done <- alert.RunModal() == appkit.AlertFirstButtonReturn
	})
	select {
	case ok := <-done:
		return ok, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}
