//go:build !linux

package guest

import (
	"errors"
	"io"
)

// superviseChild exists only on Linux: the init runs inside Linux
// containers.
func superviseChild([]string, []string, io.Writer, io.Writer) (int, error) {
	return 2, errors.New("the in-container init runs on Linux only")
}
