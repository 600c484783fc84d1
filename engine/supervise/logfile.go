package supervise

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// LogFile keeps the lines of a Logs on disk, one JSON object a line (the
// fields of Line), so that they can be read after the process that wrote
// them is gone: why a failed start failed, once its daemon has exited.
// At MaxBytes the file becomes Path.1 (the one before is dropped).
type LogFile struct {
	Path     string
	MaxBytes int64 // 0: 16 MiB

	mu   sync.Mutex
	f    *os.File
	size int64
	err  error // the first write error; later lines are dropped
}

// OpenLogFile starts a new log at path (mode 0600, its dir 0700): the
// previous one, a former process's, becomes path.1.
func OpenLogFile(path string) (*LogFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		if err := os.Rename(path, path+".1"); err != nil {
			return nil, fmt.Errorf("log file: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	return &LogFile{Path: path, f: f}, nil
}

func (lf *LogFile) add(l Line) {
	b, err := json.Marshal(l)
	if err != nil {
		return
	}
	b = append(b, '\n')
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.f == nil || lf.err != nil {
		return
	}
	limit := lf.MaxBytes
	if limit <= 0 {
		limit = 16 << 20
	}
	if lf.size > 0 && lf.size+int64(len(b)) > limit {
		_ = lf.f.Close()
		lf.f, lf.size = nil, 0
		if err := os.Rename(lf.Path, lf.Path+".1"); err != nil {
			lf.err = err
			return
		}
		if lf.f, lf.err = os.OpenFile(lf.Path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600); lf.err != nil {
			return
		}
	}
	n, err := lf.f.Write(b)
	lf.size += int64(n)
	if err != nil {
		lf.err = err
	}
}

// Close closes the file.
func (lf *LogFile) Close() error {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.f == nil {
		return nil
	}
	err := lf.f.Close()
	lf.f = nil
	return err
}
