// Package guest is what runs inside the containers: the init (PID 1:
// the relays from the container's loopback to the host's sockets, the
// agent's token, one child) and the agent's chat loop; and the paths in a
// container that the host (engine/sandbox) and these programs agree on.
package guest

// Paths inside a container: the shared socket directory and the agent's own
// directory, both bind-mounted read-only from the container host.
const (
	SocketDir  = "/run/thesystem/sockets"
	ServiceDir = "/run/thesystem/services"
	// IdentityDir holds a service container's chat key (ServiceSpec).
	IdentityDir = "/run/thesystem/identity"
	// IdentityFile is the name of a chat key in its dir.
	IdentityFile = "identity.pem"
	// OwnDir is a service container's own socket dir (ServiceSpec.OwnDir).
	OwnDir      = "/run/thesystem/own"
	AgentDir    = "/run/thesystem/agent"
	ProxySocket = "agentauth.sock"
	ChatSocket  = "chat.sock"
	TokenFile   = "token"
)

// Paths inside an agent container.
const (
	InitPath     = "/thesystem"
	ProjectPath  = "/project"
	WorkspaceDir = "/workspace"
	// ProjectShareDir is where a VM's shared project mount is bound (with
	// slave propagation: the VM's project mount made again reaches a
	// running container); the project is then SharedProjectPath.
	ProjectShareDir   = "/run/thesystem/project-share"
	SharedProjectPath = ProjectShareDir + "/project"
)

// ChatPort is where an agent finds the chat server on its container's
// loopback (the init's relay): the Host its clients send.
const ChatPort = 6667
