package guest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// Stream is what a run of the runtime said, read from its output: with
// claude's `--output-format stream-json --verbose`, one JSON event a line,
// each tool it uses is a progress line and the result event is the answer;
// any other output is the answer as it is.
type Stream struct {
	// Answer is the result's text, or the output itself when there was
	// no result event.
	Answer string
	// Failed: the result event said the run ended in an error.
	Failed bool
	// Denied are the tools the runtime was not allowed to use.
	Denied []string
	// Tools is how many tools it used.
	Tools int
	// Session is the conversation the runtime said it ran in (codex's
	// thread; claude's is chosen beforehand).
	Session string
}

// streamEvent is the part of a stream-json event the runner reads.
type streamEvent struct {
	Type    string `json:"type"`
	Message struct {
		Content []struct {
			Type  string          `json:"type"`
			Name  string          `json:"name"`
			Input json.RawMessage `json:"input"`
		} `json:"content"`
	} `json:"message"`
	Result            *string `json:"result"`
	IsError           bool    `json:"is_error"`
	PermissionDenials []struct {
		ToolName string `json:"tool_name"`
	} `json:"permission_denials"`
}

// ReadStream reads a run's output as it comes, calling progress with a
// line for each tool the runtime uses ("running: go test ./...",
// "editing engine/x.go").
func ReadStream(r io.Reader, progress func(string)) Stream {
	var s Stream
	var plain strings.Builder
	sawResult := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev streamEvent
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil || ev.Type == "" {
			plain.Write(line)
			plain.WriteByte('\n')
			continue
		}
		switch ev.Type {
		case "assistant":
			for _, c := range ev.Message.Content {
				if c.Type == "tool_use" {
					s.Tools++
					if progress != nil {
						progress(describeTool(c.Name, c.Input))
					}
				}
			}
		case "result":
			sawResult = true
			if ev.Result != nil {
				s.Answer = *ev.Result
			}
			s.Failed = ev.IsError
			for _, d := range ev.PermissionDenials {
				s.Denied = append(s.Denied, d.ToolName)
			}
		}
	}
	if !sawResult {
		s.Answer = plain.String()
	}
	s.Answer = strings.TrimSpace(s.Answer)
	return s
}

// describeTool is a short line of what a tool use does.
func describeTool(name string, input json.RawMessage) string {
	var in struct {
		Command     string `json:"command"`
		FilePath    string `json:"file_path"`
		Path        string `json:"path"`
		Pattern     string `json:"pattern"`
		Description string `json:"description"`
		URL         string `json:"url"`
	}
	_ = json.Unmarshal(input, &in)
	short := shortLine
	file := in.FilePath
	if file == "" {
		file = in.Path
	}
	// Paths as the user knows them: in the project (the working copy).
	file = strings.TrimPrefix(strings.TrimPrefix(file, "/workspace/project/"), "/workspace/")
	switch name {
	case "Bash":
		return "running: " + short(in.Command)
	case "Edit", "MultiEdit", "Write", "NotebookEdit":
		return "editing " + short(file)
	case "Read":
		return "reading " + short(file)
	case "Grep", "Glob":
		return "searching " + short(in.Pattern)
	case "Task", "Agent":
		return "delegating: " + short(in.Description)
	case "WebFetch":
		return "fetching " + short(in.URL)
	}
	if file != "" {
		return fmt.Sprintf("%s %s", strings.ToLower(name), short(path.Base(file)))
	}
	return "using " + name
}

// throttle passes on at most one line per interval: a line that comes
// sooner waits, and only the latest waiting one is passed on when the
// interval is over (or dropped at the end: the answer follows).
type throttle struct {
	interval time.Duration
	send     func(string)
	last     time.Time
	pending  string
	now      func() time.Time
}

func (t *throttle) line(s string) {
	now := t.now()
	if now.Sub(t.last) >= t.interval {
		t.last, t.pending = now, ""
		t.send(s)
		return
	}
	t.pending = s
}

// tick passes on the waiting line once the interval is over.
func (t *throttle) tick() {
	if t.pending != "" && t.now().Sub(t.last) >= t.interval {
		s := t.pending
		t.last, t.pending = t.now(), ""
		t.send(s)
	}
}
