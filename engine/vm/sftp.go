package vm

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"

	"github.com/pkg/sftp"
)

// ServeReadOnly serves dir over SFTP on rw until the other side goes away:
// read-only (every request that would change anything is refused) and
// confined to dir (each path is taken inside it through os.Root, so
// neither ".." nor a symlink leads out). This is the host's side of the
// project's mount in the VM: the guest's sshfs, over an SSH connection of
// the engine's own, sees the project and nothing else of the host.
func ServeReadOnly(dir string, rw io.ReadWriteCloser) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }()
	h := rootHandlers{root}
	srv := sftp.NewRequestServer(rw, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h})
	defer func() { _ = srv.Close() }()
	if err := srv.Serve(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// rootHandlers answers the SFTP requests from inside an os.Root.
type rootHandlers struct{ root *os.Root }

// rel is an SFTP path (absolute, "/" the root) as a path inside the root.
func rel(p string) string {
	p = path.Clean("/" + p)
	if p == "/" {
		return "."
	}
	return p[1:]
}

func (h rootHandlers) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	f, err := h.root.Open(rel(r.Filepath))
	if err != nil {
		return nil, err
	}
	return f, nil // the server closes it
}

func (rootHandlers) Filewrite(*sftp.Request) (io.WriterAt, error) {
	return nil, sftp.ErrSSHFxPermissionDenied
}

func (rootHandlers) Filecmd(*sftp.Request) error { return sftp.ErrSSHFxPermissionDenied }

func (h rootHandlers) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	switch r.Method {
	case "List":
		d, err := h.root.Open(rel(r.Filepath))
		if err != nil {
			return nil, err
		}
		defer func() { _ = d.Close() }()
		entries, err := d.Readdir(-1)
		if err != nil {
			return nil, err
		}
		return listerAt(entries), nil
	case "Stat":
		fi, err := h.root.Stat(rel(r.Filepath))
		if err != nil {
			return nil, err
		}
		return listerAt{fi}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

func (h rootHandlers) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	fi, err := h.root.Lstat(rel(r.Filepath))
	if err != nil {
		return nil, err
	}
	return listerAt{fi}, nil
}

// Readlink is the link's target as it is written: the guest resolves it
// in its own tree, never the host's.
func (h rootHandlers) Readlink(p string) (string, error) { return h.root.Readlink(rel(p)) }

// RealPath is p made absolute inside the root.
func (rootHandlers) RealPath(p string) (string, error) { return path.Clean("/" + p), nil }

type listerAt []fs.FileInfo

func (l listerAt) ListAt(out []fs.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if n < len(out) {
		return n, io.EOF
	}
	return n, nil
}
