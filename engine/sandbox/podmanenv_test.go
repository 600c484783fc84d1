package sandbox

import (
	"slices"
	"testing"
)

func TestPodmanEnv(t *testing.T) {
	caller := []string{"PATH=/usr/bin", "HOME=/root", "CONTAINER_HOST=", "CONTAINER_CONNECTION=remote",
		"DOCKER_HOST=unix:///var/run/docker.sock", "CONTAINERS_CONF=/home/u/.config/containers/containers.conf",
		"CONTAINERS_CONF_OVERRIDE=/x", "CONTAINER_SSHKEY=/k", "XDG_RUNTIME_DIR=/run/user/0"}
	for _, tc := range []struct {
		name, conf string
		want       []string
	}{
		{"the caller's podman settings dropped", "", []string{"PATH=/usr/bin", "HOME=/root", "XDG_RUNTIME_DIR=/run/user/0"}},
		{"the engine's own containers.conf", "/t/containers.conf", []string{"PATH=/usr/bin", "HOME=/root", "XDG_RUNTIME_DIR=/run/user/0", "CONTAINERS_CONF=/t/containers.conf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PodmanEnv(caller, tc.conf); !slices.Equal(got, tc.want) {
				t.Errorf("PodmanEnv = %q, want %q", got, tc.want)
			}
		})
	}
}
