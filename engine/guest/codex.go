package guest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// The runtimes the runner knows how to run (RunnerOptions.Runtime).
const (
	RuntimeClaude = "claude" // claude -p --output-format stream-json: --session-id, --resume
	RuntimeCodex  = "codex"  // codex exec --json: resume <thread id>
)

// codexProvider is the model provider codex is given: the proxy's openai
// route in the container ($OPENAI_BASE_URL), with the agent's token as
// its key ($OPENAI_API_KEY, read by codex from the environment; never in
// an argument or a file). Nothing when the environment has no route.
func codexProvider(env []string) []string {
	base := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "OPENAI_BASE_URL="); ok {
			base = v
		}
	}
	if base == "" {
		return nil
	}
	return []string{"-c", "model_provider=thesystem",
		"-c", "model_providers.thesystem={name=\"TheSystem proxy\",base_url=" + TOMLString(base) + ",env_key=\"OPENAI_API_KEY\",wire_api=\"responses\"}"}
}

// TOMLString quotes s as a TOML basic string (for codex's -c key=value).
func TOMLString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == utf8.RuneError || r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// codexHome makes sure codex's home ($CODEX_HOME, else ~/.codex: in the
// workspace, so its sessions persist) exists: codex refuses to start
// without it.
func codexHome(env []string) error {
	home, dir := "", ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "HOME="); ok {
			home = v
		}
		if v, ok := strings.CutPrefix(kv, "CODEX_HOME="); ok {
			dir = v
		}
	}
	if dir == "" {
		if home == "" {
			return nil
		}
		dir = filepath.Join(home, ".codex")
	}
	return os.MkdirAll(dir, 0o700)
}

// codexEvent is the part of a `codex exec --json` event the runner reads.
type codexEvent struct {
	Type     string `json:"type"`
	ThreadID string `json:"thread_id"`
	Message  string `json:"message"` // type error
	Error    *struct {
		Message string `json:"message"`
	} `json:"error"` // type turn.failed
	Item *struct {
		Type    string `json:"type"`
		Text    string `json:"text"`
		Command string `json:"command"`
		Server  string `json:"server"`
		Tool    string `json:"tool"`
		Query   string `json:"query"`
		Changes []struct {
			Path string `json:"path"`
		} `json:"changes"`
	} `json:"item"`
}

// ReadCodexStream reads `codex exec --json` as it comes: each command it
// runs, file it changes or tool it calls is a progress line; its last
// message is the answer; a failed turn is a failure, its error the
// answer when it said nothing else. Output that is not its events is the
// answer as it is.
func ReadCodexStream(r io.Reader, progress func(string)) Stream {
	var s Stream
	var plain strings.Builder
	var failure string
	events := false
	say := func(line string) {
		s.Tools++
		if progress != nil {
			progress(line)
		}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev codexEvent
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil || ev.Type == "" {
			plain.Write(line)
			plain.WriteByte('\n')
			continue
		}
		events = true
		switch ev.Type {
		case "thread.started":
			s.Session = ev.ThreadID
		case "turn.failed":
			s.Failed = true
			if ev.Error != nil {
				failure = ev.Error.Message
			}
		case "error":
			failure = ev.Message
		case "item.started", "item.completed":
			it := ev.Item
			if it == nil {
				continue
			}
			switch {
			case it.Type == "command_execution" && ev.Type == "item.started":
				say("running: " + shortLine(codexCommand(it.Command)))
			case it.Type == "file_change" && ev.Type == "item.completed":
				var files []string
				for _, c := range it.Changes {
					files = append(files, strings.TrimPrefix(strings.TrimPrefix(c.Path, "/workspace/project/"), "/workspace/"))
				}
				say("editing " + shortLine(strings.Join(files, ", ")))
			case it.Type == "mcp_tool_call" && ev.Type == "item.started":
				say("using " + it.Server + "." + it.Tool)
			case it.Type == "web_search" && ev.Type == "item.started":
				say("searching the web: " + shortLine(it.Query))
			case it.Type == "agent_message" && ev.Type == "item.completed":
				s.Answer = it.Text
			}
		}
	}
	switch {
	case !events:
		s.Answer = plain.String()
	case s.Failed && s.Answer == "":
		s.Answer = "(codex failed: " + failure + ")"
	}
	s.Answer = strings.TrimSpace(s.Answer)
	return s
}

// codexCommand is the command codex ran, without the shell it wraps it
// in (/bin/bash -lc '…').
func codexCommand(c string) string {
	for _, sh := range []string{"/bin/bash -lc ", "bash -lc ", "/bin/sh -c ", "sh -c "} {
		if rest, ok := strings.CutPrefix(c, sh); ok {
			switch {
			case len(rest) >= 2 && rest[0] == '\'' && rest[len(rest)-1] == '\'':
				rest = strings.ReplaceAll(rest[1:len(rest)-1], `'\''`, `'`)
			case len(rest) >= 2 && rest[0] == '"' && rest[len(rest)-1] == '"':
				rest = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`").Replace(rest[1 : len(rest)-1])
			}
			return rest
		}
	}
	return c
}

// shortLine is s on one line of at most 100 characters.
func shortLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}
