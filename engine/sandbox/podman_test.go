package sandbox

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/chat"
	"github.com/thesystem-dev/thesystem/engine/guest"
)

// podmanService is a real `podman system service` of the test's own: its
// own containers.conf, storage root and run root, so nothing of the
// machine's podman is touched.
type podmanService struct {
	dir    string
	socket string
	cmd    *exec.Cmd
}

func (s *podmanService) podman(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "podman", append([]string{"--root", filepath.Join(s.dir, "root"), "--runroot", filepath.Join(s.dir, "runroot"), "--storage-driver", "vfs"}, args...)...)
	cmd.Env = PodmanEnv(os.Environ(), filepath.Join(s.dir, "containers.conf"))
	return cmd
}

const testContainersConf = `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`

// startPodman starts the service, or skips when podman is not installed
// (THESYSTEM_TEST_PODMAN=1, as `make test` sets, makes that a failure).
func startPodman(t testing.TB) *podmanService {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		if os.Getenv("THESYSTEM_TEST_PODMAN") == "1" {
			t.Fatal("THESYSTEM_TEST_PODMAN=1 but podman is not installed")
		}
		t.Skip("podman not installed")
	}
	dir, err := os.MkdirTemp("", "thesystem-podman")
	if err != nil {
		t.Fatal(err)
	}
	s := &podmanService{dir: dir, socket: filepath.Join(dir, "podman.sock")}
	if err := os.WriteFile(filepath.Join(dir, "containers.conf"), []byte(testContainersConf), 0o644); err != nil {
		t.Fatal(err)
	}
	s.cmd = s.podman(context.Background(), "system", "service", "--time", "0", "unix://"+s.socket)
	logf, _ := os.Create(filepath.Join(dir, "service.log"))
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.podman(context.Background(), "rm", "-af", "-t", "0").Run()
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		_ = logf.Close()
		_ = os.RemoveAll(dir)
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(s.socket); err == nil {
			return s
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "service.log"))
			t.Fatalf("podman service did not come up:\n%s", b)
		}
	}
}

// buildStatic builds a static linux binary.
func buildStatic(t *testing.T, pkg, out string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
}

// testImage imports an image whose root holds only the netcheck helper.
func testImage(t *testing.T, p *Podman) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "netcheck")
	buildStatic(t, "./testdata/netcheck", bin)
	tarPath := filepath.Join(dir, "rootfs.tar")
	f, _ := os.Create(tarPath)
	tw := tar.NewWriter(f)
	for _, d := range []string{"etc/", "run/", "run/thesystem/", "run/thesystem/sockets/", "run/thesystem/agent/", "workspace/", "project/"} {
		_ = tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755})
	}
	// As in any distribution's root: the tmpfs on /tmp takes this mode.
	_ = tw.WriteHeader(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777})
	b, _ := os.ReadFile(bin)
	_ = tw.WriteHeader(&tar.Header{Name: "netcheck", Mode: 0o755, Size: int64(len(b))})
	_, _ = tw.Write(b)
	_ = tw.WriteHeader(&tar.Header{Name: "thesystem", Mode: 0o755}) // mount point for the init
	_ = tw.Close()
	_ = f.Close()
	const ref = "localhost/thesystem-test:netcheck"
	if err := p.ImportImage(tarPath, ref); err != nil {
		t.Fatal(err)
	}
	return ref
}

// socketDir is what the container host prepares: the agent's token (the
// host's uid owner's), a fake proxy that checks the token, and the real
// chat server.
func socketDir(t *testing.T, token string, owner int) (string, *[]string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "thesystem-sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	_ = os.Chmod(dir, 0o755)
	agentDir := filepath.Join(dir, "agent")
	if err := os.Mkdir(agentDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(agentDir, guest.TokenFile), []byte(token+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(agentDir, guest.TokenFile), owner, owner); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	var lc net.ListenConfig
	pl, err := lc.Listen(t.Context(), "unix", filepath.Join(dir, guest.ProxySocket))
	if err != nil {
		t.Fatal(err)
	}
	proxy := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path+" "+r.Header.Get("X-Api-Key"))
		mu.Unlock()
		if r.Header.Get("X-Api-Key") != token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("proxied"))
	})}
	go func() { _ = proxy.Serve(pl) }()
	cl, err := lc.Listen(t.Context(), "unix", filepath.Join(dir, guest.ChatSocket))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = chat.New(chat.Options{Channels: []string{"#general"}}).Serve(ctx, cl) }()
	t.Cleanup(func() { cancel(); _ = proxy.Close() })
	for _, s := range []string{guest.ProxySocket, guest.ChatSocket} {
		_ = os.Chmod(filepath.Join(dir, s), 0o666)
	}
	return dir, &seen
}

func TestAgentContainer(t *testing.T) {
	svc := startPodman(t)
	p, err := Connect(t.Context(), svc.socket)
	if err != nil {
		t.Fatal(err)
	}
	img := testImage(t, p)
	initBin := filepath.Join(t.TempDir(), "thesystem")
	buildStatic(t, "../../app", initBin)
	_ = os.Chmod(filepath.Dir(initBin), 0o755)

	const planted = "sk-ant-api03-PLANTEDpodmanKEY0123456789abcdef"
	token := "tsa_" + strings.Repeat("cd", 32)
	// The container's ids are no account's of the host: its uid 1000 is
	// the host's base+1000.
	base, err := FreeIDBase(IDFiles{})
	if err != nil {
		t.Fatal(err)
	}
	ids := IDMap{Base: base}
	sock, seen := socketDir(t, token, ids.Host(1000))

	// A listener of the host's, on its loopback: the container must not
	// reach it.
	var lc net.ListenConfig
	hostLn, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()
	project := t.TempDir()
	_ = os.Chmod(project, 0o755)

	kept, _ := ForwardEnv([]string{"ANTHROPIC_MODEL=claude-test", "ANTHROPIC_API_KEY=" + planted, "THESYSTEM_NOTE=" + planted})
	spec := AgentSpec{
		Agent: "agent-1", Stack: "test", Image: img, InitBinary: initBin, SocketDir: sock, AgentDir: filepath.Join(sock, "agent"), ProjectDir: project,
		Workspace: "thesystem-test-agent-1", Argv: []string{"/netcheck", hostLn.Addr().String(), "10.0.0.1:80"},
		Env: kept, User: "1000:1000", IDs: ids, Memory: 256 << 20, CPUs: 0.5, Pids: 128,
	}
	id, code, out := runToExit(t, svc, p, spec)
	if code != 0 {
		mapping, _ := svc.podman(t.Context(), "inspect", "--format", "{{json .HostConfig.IDMappings}} {{.HostConfig.UsernsMode}} {{json .Config.User}}", id).CombinedOutput()
		t.Fatalf("container exited %d:\n%s\nids, user: %s", code, out, mapping)
	}
	result := filepath.Join(svc.dir, "root", "volumes", spec.Workspace, "_data", "result.json")
	b, err := os.ReadFile(result)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(result); err != nil {
		t.Error(err)
	} else if owner := fi.Sys().(*syscall.Stat_t).Uid; owner != uint32(ids.Host(1000)) {
		t.Errorf("the agent's file on the host is uid %d's, want %d's", owner, ids.Host(1000))
	}
	if _, err := user.LookupId(strconv.Itoa(ids.Host(1000))); err == nil {
		t.Errorf("the agents' host uid %d is an account's", ids.Host(1000))
	}
	var res map[string]string
	_ = json.Unmarshal(b, &res)
	if res["proxy"] != "200 OK proxied" {
		t.Errorf("proxy through the loopback relay: %q", res["proxy"])
	}
	if !strings.HasPrefix(res["chat"], "200 OK") || !strings.Contains(res["chat"], `"status":"healthy"`) {
		t.Errorf("chat through the loopback relay: %q", res["chat"])
	}
	for _, target := range []string{hostLn.Addr().String(), "10.0.0.1:80"} {
		if r := res["dial "+target]; !strings.HasPrefix(r, "error:") {
			t.Errorf("reached %s from inside: %q", target, r)
		}
	}
	if res["tmp"] != "writable" || !strings.Contains(res["rootfs"], "read-only file system") {
		t.Errorf("tmp %q rootfs %q", res["tmp"], res["rootfs"])
	}
	if !strings.Contains(res["uid"], "Uid:\t1000\t") || !strings.Contains(res["uid"], "CapEff:\t0000000000000000") || !strings.Contains(res["uid"], "NoNewPrivs:\t1") {
		t.Errorf("process status:\n%s", res["uid"])
	}
	if len(*seen) != 1 || (*seen)[0] != "/anthropic/v1/models "+token {
		t.Errorf("proxy saw %q", *seen)
	}

	data, err := p.Inspect(id)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(data)
	if strings.Contains(string(raw), "PLANTED") || strings.Contains(string(raw), token) {
		t.Fatal("podman inspect holds a key or the token")
	}
	hc := data.HostConfig
	if hc.NetworkMode != "none" || !hc.ReadonlyRootfs || hc.PidsLimit != 128 || hc.Memory != 256<<20 || data.Config.User != "1000:1000" {
		t.Errorf("host config: network %q ro %v pids %d mem %d user %q", hc.NetworkMode, hc.ReadonlyRootfs, hc.PidsLimit, hc.Memory, data.Config.User)
	}
	// Every capability of the default set is dropped, none added; the
	// process status above shows the effective set is empty.
	if !containsFold(hc.CapDrop, "CAP_CHOWN") || !containsFold(hc.CapDrop, "CAP_NET_RAW") || len(hc.CapAdd) != 0 || !containsFold(hc.SecurityOpt, "no-new-privileges") {
		t.Errorf("caps dropped %v, security %v", hc.CapDrop, hc.SecurityOpt)
	}
	if data.Config.Labels[LabelManaged] != "true" || data.Config.Labels[LabelAgent] != "agent-1" {
		t.Errorf("labels %v", data.Config.Labels)
	}
	managed, err := p.ListManaged("test")
	if err != nil || len(managed) != 1 {
		t.Errorf("managed %v %v", managed, err)
	}
}

// runToExit creates the agent's container, starts it and waits for it to
// exit: its id, exit status and output.
func runToExit(t *testing.T, svc *podmanService, p *Podman, spec AgentSpec) (string, int, []byte) {
	t.Helper()
	id, err := p.CreateAgent(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(id); err != nil {
		t.Fatal(err)
	}
	code, err := p.Wait(id)
	if err != nil {
		t.Fatalf("wait for %s: %v", spec.Agent, err)
	}
	out, _ := svc.podman(t.Context(), "logs", id).CombinedOutput()
	return id, code, out
}

func containsFold(list []string, want string) bool {
	for _, s := range list {
		if strings.EqualFold(s, want) || strings.Contains(strings.ToLower(s), strings.ToLower(want)) {
			return true
		}
	}
	return false
}

func TestSpecRefusesRoot(t *testing.T) {
	for _, u := range []string{"", "0", "root", "0:0"} {
		if _, err := (AgentSpec{Agent: "a", User: u, Argv: []string{"x"}}).Generator(); err == nil {
			t.Errorf("user %q accepted", u)
		}
	}
}

func TestConnectErrors(t *testing.T) {
	_, err := Connect(t.Context(), filepath.Join(t.TempDir(), "nope.sock"))
	if err == nil || !strings.Contains(err.Error(), "is `podman system service` running?") {
		t.Errorf("%v", err)
	}
}

// TestBuildFromContainerfile builds an image from a Containerfile whose
// base is in the local store (no registry is reachable here; a registry
// base takes the same path).
func TestBuildFromContainerfile(t *testing.T) {
	svc := startPodman(t)
	p, err := Connect(t.Context(), svc.socket)
	if err != nil {
		t.Fatal(err)
	}
	base := testImage(t, p)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mission.txt"), []byte("ship it\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cf := filepath.Join(dir, "Containerfile")
	if err := os.WriteFile(cf, []byte("FROM "+base+"\nLABEL dev.thesystem.test=built\nCOPY mission.txt /etc/mission.txt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	const ref = "localhost/thesystem-test:built"
	if err := p.BuildImage(cf, ref, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if ok, err := p.ImageExists(ref); err != nil || !ok {
		t.Fatalf("built image missing: %v", err)
	}
	b, err := svc.podman(t.Context(), "image", "inspect", "--format", "{{index .Labels \"dev.thesystem.test\"}}", ref).Output()
	if err != nil || strings.TrimSpace(string(b)) != "built" {
		t.Errorf("label: %q %v", b, err)
	}
	if err := p.BuildImage(filepath.Join(dir, "nope"), ref, &out); err == nil {
		t.Error("a missing Containerfile built")
	}
}

// TestUnreachable tells podman answering with an error from the link to
// podman being down (what a dead VM forward looks like).
func TestUnreachable(t *testing.T) {
	svc := startPodman(t)
	p, err := Connect(t.Context(), svc.socket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait("no-such-container"); err == nil || Unreachable(err) {
		t.Fatalf("podman's own answer: %v (unreachable %v)", err, Unreachable(err))
	}
	_ = svc.cmd.Process.Kill()
	_ = svc.cmd.Wait()
	if _, err := p.Running("no-such-container"); err == nil || !Unreachable(err) {
		t.Fatalf("podman gone: %v (unreachable %v)", err, Unreachable(err))
	}
}

// TestProjectMounts: the host's project is bound read-only at /project; a
// VM's shared project mount is bound with slave propagation (a mount made
// again below it reaches the running container), and the runner is told
// where the project then is.
func TestProjectMounts(t *testing.T) {
	for _, tc := range []struct {
		shared     bool
		dest, path string
		opts       string
	}{
		{false, "/project", "/project", "ro bind"},
		{true, "/run/thesystem/project-share", "/run/thesystem/project-share/project", "ro rbind rslave"},
	} {
		t.Run(fmt.Sprint("shared ", tc.shared), func(t *testing.T) {
			g, err := (AgentSpec{Agent: "a", User: "1000:1000", Argv: []string{"x"}, ProjectDir: "/p/", ProjectShared: tc.shared}).Generator()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range g.Mounts {
				if m.Source == "/p" {
					got = append(got, m.Destination+" "+strings.Join(m.Options, " "))
				}
			}
			if len(got) != 1 || got[0] != tc.dest+" "+tc.opts {
				t.Errorf("project mounts %q", got)
			}
			if p := ProjectPath(tc.shared); p != tc.path {
				t.Errorf("project path %s", p)
			}
		})
	}
}
