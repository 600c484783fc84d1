//go:build !darwin || cgo

package menubar

import (
	"context"
	"sync"

	"fyne.io/systray"
)

// RunSystray shows m in the platform's status area (macOS: the menu bar;
// Linux: a StatusNotifierItem on the session bus) until ctx ends or m's
// Quit ends it. On macOS it must run on the main goroutine.
func RunSystray(ctx context.Context, m *Menu) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := &guard{}
	go func() {
		<-ctx.Done()
		g.close() // no tray call after this: systray.Quit closes its connection
		systray.Quit()
	}()
	systray.Run(func() {
		go m.Run(ctx, sysTray{g})
	}, cancel)
	return nil
}

// guard keeps tray calls from running once the tray is gone.
type guard struct {
	mu     sync.RWMutex
	closed bool
}

func (g *guard) do(f func()) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if !g.closed {
		f()
	}
}

func (g *guard) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
}

// sysTray is Tray over fyne.io/systray.
type sysTray struct{ g *guard }

func (t sysTray) SetIcon(png []byte)     { t.g.do(func() { systray.SetIcon(png) }) }
func (t sysTray) SetTooltip(text string) { t.g.do(func() { systray.SetTooltip(text) }) }
func (t sysTray) AddSeparator()          { t.g.do(systray.AddSeparator) }

func (t sysTray) AddItem(title, tip string) Item {
	it := detached()
	t.g.do(func() { it = systray.AddMenuItem(title, tip) })
	return sysItem{it, t.g}
}

func (t sysTray) AddCheckbox(title, tip string, checked bool) Item {
	it := detached()
	t.g.do(func() { it = systray.AddMenuItemCheckbox(title, tip, checked) })
	return sysItem{it, t.g}
}

// detached is an item for a tray that is gone: never shown, never clicked.
func detached() *systray.MenuItem { return &systray.MenuItem{ClickedCh: make(chan struct{})} }

// sysItem is Item over a systray menu item.
type sysItem struct {
	it *systray.MenuItem
	g  *guard
}

func (i sysItem) SetTitle(s string)        { i.g.do(func() { i.it.SetTitle(s) }) }
func (i sysItem) SetTooltip(s string)      { i.g.do(func() { i.it.SetTooltip(s) }) }
func (i sysItem) Enable()                  { i.g.do(i.it.Enable) }
func (i sysItem) Disable()                 { i.g.do(i.it.Disable) }
func (i sysItem) Show()                    { i.g.do(i.it.Show) }
func (i sysItem) Hide()                    { i.g.do(i.it.Hide) }
func (i sysItem) Check()                   { i.g.do(i.it.Check) }
func (i sysItem) Uncheck()                 { i.g.do(i.it.Uncheck) }
func (i sysItem) Checked() bool            { return i.it.Checked() }
func (i sysItem) Clicked() <-chan struct{} { return i.it.ClickedCh }

func (i sysItem) AddSub(title, tip string) Item {
	sub := detached()
	i.g.do(func() { sub = i.it.AddSubMenuItem(title, tip) })
	return sysItem{sub, i.g}
}
