package supervise

import (
	"bytes"
	"sort"
	"sync"
	"time"
)

// Line is one line of a component's output.
type Line struct {
	Time      time.Time `json:"time"`
	Component string    `json:"component"`
	Stream    string    `json:"stream"` // stdout, stderr, or supervisor
	Text      string    `json:"text"`
}

// Logs multiplexes every component's output: a bounded ring of recent
// lines per component, and followers that see new lines as they come. A
// slow follower loses lines (and is told how many); it never blocks a
// component.
type Logs struct {
	size int

	mu        sync.Mutex
	rings     map[string]*ring
	followers map[*follower]struct{}
	now       func() time.Time
	file      *LogFile // where every line is kept too (nil: nowhere)
}

// KeepIn keeps every line from now on in f too.
func (l *Logs) KeepIn(f *LogFile) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.file = f
}

type ring struct {
	lines []Line
	next  int
	full  bool
}

func (r *ring) add(l Line, size int) {
	if len(r.lines) < size {
		r.lines = append(r.lines, l)
		return
	}
	r.lines[r.next] = l
	r.next = (r.next + 1) % size
	r.full = true
}

func (r *ring) all() []Line {
	if !r.full {
		return append([]Line(nil), r.lines...)
	}
	return append(append([]Line(nil), r.lines[r.next:]...), r.lines[:r.next]...)
}

type follower struct {
	component string
	ch        chan Line
	dropped   int
}

// NewLogs keeps the last size lines of each component.
func NewLogs(size int) *Logs {
	if size <= 0 {
		size = 1000
	}
	return &Logs{size: size, rings: map[string]*ring{}, followers: map[*follower]struct{}{}, now: time.Now}
}

// Append records a line and hands it to the followers.
func (l *Logs) Append(line Line) {
	if line.Time.IsZero() {
		line.Time = l.now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rings[line.Component]
	if r == nil {
		r = &ring{}
		l.rings[line.Component] = r
	}
	r.add(line, l.size)
	if l.file != nil {
		l.file.add(line)
	}
	for f := range l.followers {
		if f.component != "" && f.component != line.Component {
			continue
		}
		select {
		case f.ch <- line:
		default:
			f.dropped++
		}
	}
}

// Tail returns up to n recent lines of component ("" for all, merged in
// time order), oldest first.
func (l *Logs) Tail(component string, n int) []Line {
	l.mu.Lock()
	var out []Line
	for name, r := range l.rings {
		if component == "" || component == name {
			out = append(out, r.all()...)
		}
	}
	l.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	if n >= 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// Follow returns the last n lines and a channel of the lines that come
// after them, taken under one lock so none is lost or repeated between
// the two. stop ends the subscription and closes the channel.
func (l *Logs) Follow(component string, n int) (backlog []Line, lines <-chan Line, stop func()) {
	f := &follower{component: component, ch: make(chan Line, 1024)}
	l.mu.Lock()
	for name, r := range l.rings {
		if component == "" || component == name {
			backlog = append(backlog, r.all()...)
		}
	}
	l.followers[f] = struct{}{}
	l.mu.Unlock()
	sort.SliceStable(backlog, func(i, j int) bool { return backlog[i].Time.Before(backlog[j].Time) })
	if n >= 0 && len(backlog) > n {
		backlog = backlog[len(backlog)-n:]
	}
	var once sync.Once
	return backlog, f.ch, func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.followers, f)
			l.mu.Unlock()
			close(f.ch)
		})
	}
}

// Writer returns a writer that splits what it is given into lines of
// component's stream. Close flushes a last unterminated line.
func (l *Logs) Writer(component, stream string) *LineWriter {
	return &LineWriter{logs: l, component: component, stream: stream}
}

// LineWriter is an io.WriteCloser that appends complete lines to Logs.
// Its memory is bounded whatever it is given: a line longer than
// MaxLineBytes is kept cut to that length, and the rest of it dropped.
type LineWriter struct {
	logs      *Logs
	component string
	stream    string
	mu        sync.Mutex
	buf       []byte
	dropping  bool // the rest of a line that was cut
}

// MaxLineBytes is the longest line kept in the logs.
const MaxLineBytes = 16 << 10

const cutMark = " … (line cut)"

func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		end := len(p)
		if i >= 0 {
			end = i
		}
		if !w.dropping {
			take := min(MaxLineBytes-len(w.buf), end)
			w.buf = append(w.buf, p[:take]...)
			if end > take {
				w.emit(append(w.buf, cutMark...))
				w.buf, w.dropping = w.buf[:0], true
			}
		}
		if i < 0 {
			break
		}
		if !w.dropping {
			w.emit(bytes.TrimSuffix(w.buf, []byte("\r")))
		}
		w.buf, w.dropping = w.buf[:0], false
		p = p[i+1:]
	}
	return n, nil
}

func (w *LineWriter) emit(b []byte) {
	w.logs.Append(Line{Component: w.component, Stream: w.stream, Text: string(b)})
}

// Close flushes the last partial line.
func (w *LineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 && !w.dropping {
		w.emit(w.buf)
	}
	w.buf, w.dropping = nil, false
	return nil
}
