// Package menubar is the macOS status item and its menu (fyne.io/systray),
// with native dialogs through darwinkit. Like the CLI it is a client of the
// engine's local API and events stream only; it arrives with issue #7.
package menubar
