package cli

import "golang.org/x/sys/unix"

// echoOff stops the terminal at fd from echoing what is typed, until
// restore: turned off before a secret's prompt is shown, so that nothing
// typed ahead of the prompt is echoed either.
func echoOff(fd int) (restore func(), err error) {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	old := *t
	t.Lflag &^= unix.ECHO
	t.Lflag |= unix.ICANON | unix.ISIG
	t.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return nil, err
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, &old) }, nil
}
