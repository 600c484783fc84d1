package guest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/thesystem-dev/thesystem/engine/provider"
	"github.com/thesystem-dev/thesystem/engine/relay"
)

// InitOptions configure the in-container init.
type InitOptions struct {
	// SocketDir holds the proxy's socket.
	SocketDir string
	// ChatSocket is the chat server's socket; "" means SocketDir/chat.sock.
	ChatSocket string
	// TokenFile holds the agent's token.
	TokenFile string
	// ProxyAddr and ChatAddr are where the agent finds them on its own
	// loopback (127.0.0.1:9999 and :6667 in a container).
	ProxyAddr string
	ChatAddr  string
	// Argv is the agent runtime to run as the only child.
	Argv []string
	// Env is the environment the runtime starts from (the container's).
	Env    []string
	Stdout io.Writer
	Stderr io.Writer
}

// ChildEnv is the runtime's environment: env, plus for every provider
// <P>_BASE_URL (its route on the local proxy) and <P>_API_KEY (the agent's
// token, never a key), AGENTAUTH_URL/AGENTAUTH_TOKEN for gro, and
// AGENTCHAT_URL, and THESYSTEM_TOKEN_FILE, where the runner reads the
// token again before each run (RefreshToken). Values set here win over
// inherited ones.
func ChildEnv(env []string, proxyAddr, chatAddr, tokenFile, token string) []string {
	set := map[string]string{
		"AGENTAUTH_URL":        "http://" + proxyAddr,
		"AGENTAUTH_TOKEN":      token,
		"AGENTCHAT_URL":        "ws://" + chatAddr,
		"THESYSTEM_TOKEN_FILE": tokenFile,
	}
	for _, p := range provider.All() {
		base := "http://" + proxyAddr + "/" + p.Name
		if p.Auth == provider.AuthBearer {
			base += "/v1" // OpenAI-style SDKs expect the version in the base URL
		}
		set[p.EnvPrefix+"_BASE_URL"] = base
		set[p.EnvPrefix+"_API_KEY"] = token
	}
	out := make([]string, 0, len(env)+len(set))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if _, ours := set[name]; !ours {
			out = append(out, kv)
		}
	}
	for k, v := range set {
		out = append(out, k+"="+v)
	}
	return out
}

// RefreshToken is env with the agent's token as its token file has it now
// (the engine writes a new one there when tokens are rotated): every
// variable that held the old token (AGENTAUTH_TOKEN, <P>_API_KEY) gets the
// new. Without a readable token file, env is returned as it is.
func RefreshToken(env []string) []string {
	var file, old string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "THESYSTEM_TOKEN_FILE="); ok {
			file = v
		}
		if v, ok := strings.CutPrefix(kv, "AGENTAUTH_TOKEN="); ok {
			old = v
		}
	}
	if file == "" || old == "" {
		return env
	}
	tok, err := readToken(file)
	if err != nil || tok == old {
		return env
	}
	out := make([]string, len(env))
	for i, kv := range env {
		if name, v, _ := strings.Cut(kv, "="); v == old {
			kv = name + "=" + tok
		}
		out[i] = kv
	}
	return out
}

// readToken reads the agent's token.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("agent token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", errors.New("agent token file is empty")
	}
	return tok, nil
}

// RunInit is the sandbox's PID 1: it relays the proxy and chat sockets to
// the container's loopback, runs the agent runtime as its child with the
// proxy's URLs and the agent's token in its environment (and nowhere
// else), reaps every zombie, forwards signals to the runtime, and returns
// the runtime's exit status (128+signal when it was killed).
func RunInit(ctx context.Context, opt InitOptions) (int, error) {
	if len(opt.Argv) == 0 {
		return 2, errors.New("no agent runtime to run")
	}
	tok, err := readToken(opt.TokenFile)
	if err != nil {
		return 2, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chatSock := opt.ChatSocket
	if chatSock == "" {
		chatSock = filepath.Join(opt.SocketDir, ChatSocket)
	}
	for _, f := range []struct{ addr, sock string }{
		{opt.ProxyAddr, filepath.Join(opt.SocketDir, ProxySocket)},
		{opt.ChatAddr, chatSock},
	} {
		ln, err := relay.Forward(ctx, f.addr, f.sock)
		if err != nil {
			return 2, err
		}
		defer func() { _ = ln.Close() }()
	}
	return superviseChild(opt.Argv, ChildEnv(opt.Env, opt.ProxyAddr, opt.ChatAddr, opt.TokenFile, tok), opt.Stdout, opt.Stderr)
}
