package sandbox

import "strings"

// PodmanEnv is environ for a podman the engine runs: without the caller's
// podman and docker settings (isForeignPodmanEnv), and with
// CONTAINERS_CONF=conf when conf is set (the engine's own configuration,
// e.g. a test's).
func PodmanEnv(environ []string, conf string) []string {
	out := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !isForeignPodmanEnv(name) {
			out = append(out, kv)
		}
	}
	if conf != "" {
		out = append(out, "CONTAINERS_CONF="+conf)
	}
	return out
}

// isForeignPodmanEnv says whether name is one of the variables a user's
// own podman or docker setup sets that would point the engine's podman
// somewhere else: a remote connection (even an empty CONTAINER_HOST makes
// podman a remote client, which refuses --root), docker's socket, another
// containers.conf.
func isForeignPodmanEnv(name string) bool {
	switch name {
	case "CONTAINER_HOST", "CONTAINER_CONNECTION", "CONTAINER_SSHKEY", "CONTAINER_PASSPHRASE",
		"DOCKER_HOST", "CONTAINERS_CONF", "CONTAINERS_CONF_OVERRIDE", "PODMAN_CONNECTIONS_CONF":
		return true
	}
	return false
}
