//go:build darwin && !cgo

package secrets

import "context"

func openPlatform(_ context.Context, service string) (Store, error) {
	return &securityCLI{path: "/usr/bin/security", service: service}, nil
}
