package component

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"
)

// chatHistory keeps the chat's messages on disk, one JSON object a line,
// so that `chat tail` and the menu still show the team's conversation
// after the engine restarts. At maxBytes the file becomes path.1 (the one
// before is dropped); a message longer than maxKept is kept cut.
type chatHistory struct {
	path     string
	maxBytes int64 // 0: 8 MiB
	f        *os.File
	size     int64
	err      error // the first write error; later messages are not kept
}

// historyRecord is a Message as the history file holds it.
type historyRecord struct {
	Time    time.Time `json:"time"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Direct  bool      `json:"direct,omitempty"`
	Content string    `json:"content"`
}

// maxKept is the longest content the history keeps whole.
const maxKept = 64 << 10

// load returns the last n messages of the history (path.1, then path) and
// how many damaged lines were skipped.
func (h *chatHistory) load(n int) ([]Message, int, error) {
	var out []Message
	damaged := 0
	for _, p := range []string{h.path + ".1", h.path} {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("chat history: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 4*maxKept+4096)
		for sc.Scan() {
			var r historyRecord
			if json.Unmarshal(sc.Bytes(), &r) != nil || r.From == "" {
				damaged++
				continue
			}
			out = append(out, Message(r))
			if len(out) > 2*n {
				out = append(out[:0], out[len(out)-n:]...)
			}
		}
		err = sc.Err()
		_ = f.Close()
		if err != nil {
			damaged++ // a line too long to be one of ours: the rest of that file is not read
		}
	}
	return out[max(0, len(out)-n):], damaged, nil
}

// add appends m to the history file, opened (0600, its dir 0700) on the
// first message.
func (h *chatHistory) add(m Message) {
	if h.err != nil {
		return
	}
	content := m.Content
	if len(content) > maxKept {
		cut := maxKept
		for cut > 0 && !utf8.RuneStart(content[cut]) {
			cut--
		}
		content = fmt.Sprintf("%s… (%d bytes; the history keeps the first %d)", content[:cut], len(m.Content), cut)
	}
	b, err := json.Marshal(historyRecord{Time: m.Time, From: m.From, To: m.To, Direct: m.Direct, Content: content})
	if err != nil {
		return
	}
	b = append(b, '\n')
	limit := h.maxBytes
	if limit <= 0 {
		limit = 8 << 20
	}
	if h.f != nil && h.size+int64(len(b)) > limit {
		_ = h.f.Close()
		h.f = nil
		if h.err = os.Rename(h.path, h.path+".1"); h.err != nil {
			return
		}
	}
	if h.f == nil {
		if h.err = os.MkdirAll(filepath.Dir(h.path), 0o700); h.err != nil {
			return
		}
		if h.f, h.err = os.OpenFile(h.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); h.err != nil {
			return
		}
		fi, err := h.f.Stat()
		if err != nil {
			h.err = err
			return
		}
		h.size = fi.Size()
	}
	n, err := h.f.Write(b)
	h.size += int64(n)
	if err != nil {
		h.err = err
	}
}

// close closes the file.
func (h *chatHistory) close() {
	if h.f != nil {
		_ = h.f.Close()
		h.f = nil
	}
}
