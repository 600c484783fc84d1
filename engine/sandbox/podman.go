package sandbox

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/containers/podman/v5/pkg/bindings/volumes"
	"github.com/containers/podman/v5/pkg/domain/entities/types"
	"github.com/containers/podman/v5/pkg/errorhandling"
	"github.com/containers/podman/v5/pkg/specgen"
)

// Podman is a connection to a podman API service: the host's (vm.driver
// none) or the VM's, forwarded to the host.
type Podman struct {
	conn   context.Context // carries the bindings' connection
	socket string
}

// Connect dials the podman service at socket and checks that it answers.
func Connect(ctx context.Context, socket string) (*Podman, error) {
	if _, err := os.Stat(socket); err != nil {
		return nil, fmt.Errorf("podman service socket %s: %w (is `podman system service` running?)", socket, err)
	}
	// The bindings' connection pings (/_ping), which is all a health
	// check needs: /version would make podman run its OCI runtime, conmon
	// and the package manager to describe them, every probe (most of an
	// idle stack's cost, measured by BenchmarkIdle).
	conn, err := bindings.NewConnection(context.WithoutCancel(ctx), "unix://"+socket)
	if err != nil {
		return nil, fmt.Errorf("podman service at %s does not answer: %w", socket, err)
	}
	return &Podman{conn: conn, socket: socket}, nil
}

// EnsureVolume creates the named volume unless it exists, owned by the
// host's uid:gid ("" leaves it root's).
func (p *Podman) EnsureVolume(name, owner string, labels map[string]string) error {
	ok, err := volumes.Exists(p.conn, name, nil)
	if err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	if ok {
		return nil
	}
	opts := types.VolumeCreateOptions{Name: name, Label: labels}
	if uid, gid, ok := strings.Cut(owner, ":"); ok {
		opts.Options = map[string]string{"o": "uid=" + uid + ",gid=" + gid}
	}
	if _, err := volumes.Create(p.conn, opts, nil); err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	return nil
}

// ImportImage imports a root filesystem tarball as image ref.
func (p *Podman) ImportImage(tarPath, ref string) error {
	f, err := os.Open(tarPath)
	if err != nil {
		return fmt.Errorf("image tarball: %w", err)
	}
	defer func() { _ = f.Close() }()
	if _, err := images.Import(p.conn, f, new(images.ImportOptions).WithReference(ref)); err != nil {
		return fmt.Errorf("import %s: %w", ref, err)
	}
	return nil
}

// RemoveImagesByPrefix removes every image whose name starts with prefix
// (e.g. localhost/thesystem-), so the next start rebuilds them.
func (p *Podman) RemoveImagesByPrefix(prefix string) (int, error) {
	list, err := images.List(p.conn, nil)
	if err != nil {
		return 0, err
	}
	var refs []string
	for _, img := range list {
		for _, name := range img.Names {
			if strings.HasPrefix(name, prefix) {
				refs = append(refs, name)
			}
		}
	}
	if len(refs) == 0 {
		return 0, nil
	}
	if _, errs := images.Remove(p.conn, refs, new(images.RemoveOptions).WithForce(true)); len(errs) > 0 {
		return 0, fmt.Errorf("remove images: %w", errors.Join(errs...))
	}
	return len(refs), nil
}

// ImageExists reports whether ref is in the store.
// TagImage gives ref another name, repo:tag.
func (p *Podman) TagImage(ref, repo, tag string) error {
	if err := images.Tag(p.conn, ref, tag, repo, nil); err != nil {
		return fmt.Errorf("tag %s as %s:%s: %w", ref, repo, tag, err)
	}
	return nil
}

// ImageExists says whether ref is in the store.
func (p *Podman) ImageExists(ref string) (bool, error) {
	return images.Exists(p.conn, ref, nil)
}

// CreateAgent creates (not starts) the agent's container, its workspace
// volume first. A leftover container of the same name is replaced.
func (p *Podman) CreateAgent(a AgentSpec) (string, error) {
	g, err := a.Generator()
	if err != nil {
		return "", err
	}
	owner := a.User // as the host sees it
	if a.IDs.Rootless() {
		// Ids in podman's own user namespace, where the user is 0: the
		// user's, which the container's user is (keep-id).
		owner = "0:0"
	} else if u, g, ok := strings.Cut(a.User, ":"); ok && a.IDs.Base != 0 {
		uid, err1 := strconv.Atoi(u)
		gid, err2 := strconv.Atoi(g)
		if err1 != nil || err2 != nil {
			return "", fmt.Errorf("agent %s: user %q is not uid:gid", a.Agent, a.User)
		}
		owner = fmt.Sprintf("%d:%d", a.IDs.Host(uid), a.IDs.Host(gid))
	}
	if err := p.EnsureVolume(a.Workspace, owner, map[string]string{LabelManaged: "true", LabelAgent: a.Agent, LabelStack: a.Stack}); err != nil {
		return "", err
	}
	_ = p.Remove(g.Name)
	return p.create(g)
}

func (p *Podman) create(g *specgen.SpecGenerator) (string, error) {
	resp, err := containers.CreateWithSpec(p.conn, g, nil)
	if err != nil {
		if msg := err.Error(); strings.Contains(msg, "/etc/subuid") {
			// Rootless podman without subordinate ids (podman's own
			// message ends in a stray "%!w(<nil>)").
			msg = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(msg), "%!w(<nil>)"))
			return "", fmt.Errorf("create %s: %s; `thesystem doctor` (rootless.subids) says how to give this account a range", g.Name, strings.TrimSuffix(msg, ":"))
		}
		return "", fmt.Errorf("create %s: %w", g.Name, err)
	}
	return resp.ID, nil
}

// ImportImageFrom imports a root filesystem written by write as ref,
// unless ref exists already.
func (p *Podman) ImportImageFrom(ref string, write func(io.Writer) error) error {
	if ok, err := p.ImageExists(ref); err != nil {
		return fmt.Errorf("image %s: %w", ref, err)
	} else if ok {
		return nil
	}
	pr, pw := io.Pipe()
	wrote := make(chan error, 1)
	go func() {
		err := write(pw)
		pw.CloseWithError(err)
		wrote <- err
	}()
	if _, err := images.Import(p.conn, pr, new(images.ImportOptions).WithReference(ref)); err != nil {
		_ = pr.CloseWithError(err)
		if werr := <-wrote; werr != nil {
			err = werr // what broke the stream, not the broken pipe it left
		}
		return fmt.Errorf("import %s: %w", ref, err)
	}
	return <-wrote
}

// FollowLogs copies the container's stdout and stderr (from since, when
// not zero) to w until the container stops (its log stream ends) or the
// link to podman breaks, then closes w. ctx is not watched: whoever ends
// ctx also stops the container.
func (p *Podman) FollowLogs(_ context.Context, id string, since time.Time, w io.WriteCloser) {
	stdout, stderr := make(chan string, 64), make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for stdout != nil || stderr != nil {
			var l string
			var ok bool
			select {
			case l, ok = <-stdout:
				if !ok {
					stdout = nil
					continue
				}
			case l, ok = <-stderr:
				if !ok {
					stderr = nil
					continue
				}
			}
			if !strings.HasSuffix(l, "\n") {
				l += "\n"
			}
			_, _ = io.WriteString(w, l)
		}
	}()
	opts := new(containers.LogOptions).WithFollow(true).WithStdout(true).WithStderr(true)
	if !since.IsZero() {
		opts = opts.WithSince(since.Format(time.RFC3339Nano))
	}
	_ = containers.Logs(p.conn, id, opts, stdout, stderr)
	close(stdout)
	close(stderr)
	<-done
	_ = w.Close()
}

// Attach attaches w to the created container's stdout and stderr, sends
// on ready once attached (then it may be started), and returns when the
// attach ends: the container exited, the link to podman broke, or podman
// ended it. conmon pushes the output to an attached client as it comes,
// while a followed log is looked at (with its events file) four times a
// second for as long as the container runs, and a Wait looks at the
// container's state at an interval: attached, a running container costs
// podman nothing.
//
// Only a container not yet started may be attached to: podman's attach
// initializes a container that has exited again (Docker's way), and one
// that exited before its attach came would never be seen to exit.
func (p *Podman) Attach(id string, w io.Writer, ready chan bool) error {
	// A pointer: the bindings ask reflect whether the writers are nil,
	// which panics on any other kind of value.
	out := &struct{ io.Writer }{w}
	return containers.Attach(p.conn, id, nil, out, out, ready, new(containers.AttachOptions).WithStream(true))
}

// Running reports whether the container is running.
func (p *Podman) Running(id string) (bool, error) {
	d, err := containers.Inspect(p.conn, id, nil)
	if err != nil {
		return false, err
	}
	return d.State.Running, nil
}

// Exited reports whether the container has exited and, if so, its exit
// status.
func (p *Podman) Exited(id string) (bool, int, error) {
	d, err := containers.Inspect(p.conn, id, nil)
	if err != nil {
		return false, 0, err
	}
	switch d.State.Status {
	case define.ContainerStateExited.String(), define.ContainerStateStopped.String():
		return true, int(d.State.ExitCode), nil
	}
	return false, 0, nil
}

// Start starts a created container.
func (p *Podman) Start(id string) error {
	if err := containers.Start(p.conn, id, nil); err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	return nil
}

// Stop sends SIGTERM, then SIGKILL after timeout.
func (p *Podman) Stop(id string, timeout time.Duration) error {
	err := containers.Stop(p.conn, id, new(containers.StopOptions).WithTimeout(uint(timeout.Seconds())).WithIgnore(true))
	if err != nil && !strings.Contains(err.Error(), "no such container") {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	return nil
}

// Remove removes a container (not its volumes).
func (p *Podman) Remove(id string) error {
	_, err := containers.Remove(p.conn, id, new(containers.RemoveOptions).WithForce(true).WithIgnore(true).WithTimeout(0))
	return err
}

// Unreachable reports whether err is the link to podman failing (a dead
// socket or forward), not podman answering with an error.
func Unreachable(err error) bool {
	var em *errorhandling.ErrorModel
	return err != nil && !errors.As(err, &em)
}

// Wait blocks until the container stops and returns its exit code.
// podman answers a wait by looking at the container's state at an
// interval (250 ms by default; here waitInterval): RunContainer waits only
// once the container's attach has ended, when it has exited (answered at
// once), or when its log is followed instead (the link to podman broke).
func (p *Podman) Wait(id string) (int, error) {
	opts := new(containers.WaitOptions).WithCondition([]define.ContainerStatus{define.ContainerStateExited, define.ContainerStateStopped}).
		WithInterval(waitInterval.String())
	code, err := containers.Wait(p.conn, id, opts)
	return int(code), err
}

// waitInterval is how often podman looks whether a container waited on
// has exited.
const waitInterval = 2 * time.Second

// Inspect returns podman's view of a container.
func (p *Podman) Inspect(id string) (*define.InspectContainerData, error) {
	return containers.Inspect(p.conn, id, nil)
}

// ListManaged lists the containers carrying our labels, for one stack ("" for all).
func (p *Podman) ListManaged(stack string) ([]string, error) {
	filters := map[string][]string{"label": {LabelManaged + "=true"}}
	if stack != "" {
		filters["label"] = append(filters["label"], LabelStack+"="+stack)
	}
	list, err := containers.List(p.conn, new(containers.ListOptions).WithAll(true).WithFilters(filters))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range list {
		out = append(out, c.ID)
	}
	return out, nil
}

// CopyFileOut writes the content of the regular file at path in the
// container id to w (through podman's archive API: a tar of one file).
func (p *Podman) CopyFileOut(id, path string, w io.Writer) error {
	pr, pw := io.Pipe()
	copied := make(chan error, 1)
	go func() {
		tr := tar.NewReader(pr)
		for {
			h, err := tr.Next()
			if err != nil {
				copied <- fmt.Errorf("%s in the container: %w", path, err)
				_ = pr.CloseWithError(err)
				return
			}
			if h.Typeflag == tar.TypeReg {
				_, err := io.Copy(w, tr)
				copied <- err
				_, _ = io.Copy(io.Discard, pr)
				return
			}
		}
	}()
	run, err := containers.CopyToArchive(p.conn, id, path, pw)
	if err != nil {
		_ = pw.CloseWithError(err)
		if cerr := <-copied; cerr != nil && !errors.Is(cerr, err) {
			err = errors.Join(err, cerr)
		}
		return fmt.Errorf("copy %s out of %s: %w", path, id, err)
	}
	err = run()
	_ = pw.CloseWithError(err)
	if cerr := <-copied; cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy %s out of %s: %w", path, id, err)
	}
	return nil
}
