//go:build !linux && !darwin

package secrets

import (
	"context"
	"fmt"
	"runtime"
)

func openPlatform(context.Context, string) (Store, error) {
	return nil, fmt.Errorf("%w: no key store for %s", ErrUnavailable, runtime.GOOS)
}
