package guest

import (
	"strings"
	"testing"
	"time"
)

// TestReadStream: claude's stream-json events become progress lines and
// the answer; anything else is the answer as it is.
func TestReadStream(t *testing.T) {
	stream := strings.Join([]string{
		`{"type":"system","subtype":"init","session_id":"x","tools":["Bash"]}`,
		`{"type":"assistant","message":{"content":[{"type":"text","text":"Let me look."},{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"go test ./...\nmore"}}]}}`,
		`{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}}`,
		`{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t2","name":"Edit","input":{"file_path":"/workspace/project/engine/x.go","old_string":"a","new_string":"b"}}]}}`,
		`{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t3","name":"Read","input":{"file_path":"/etc/hosts"}}]}}`,
		`{"type":"result","subtype":"success","is_error":false,"result":"Fixed the test.\n","permission_denials":[{"tool_name":"WebFetch"}]}`,
	}, "\n")
	var lines []string
	st := ReadStream(strings.NewReader(stream), func(s string) { lines = append(lines, s) })
	want := []string{"running: go test ./... …", "editing engine/x.go", "reading /etc/hosts"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("progress %q, want %q", lines, want)
	}
	if st.Answer != "Fixed the test." || st.Failed || st.Tools != 3 || len(st.Denied) != 1 || st.Denied[0] != "WebFetch" {
		t.Errorf("stream %+v", st)
	}
	plain := ReadStream(strings.NewReader("just text\n{\"proxy\":\"200 OK\"}\n"), nil)
	if plain.Answer != "just text\n{\"proxy\":\"200 OK\"}" || plain.Tools != 0 {
		t.Errorf("plain output: %+v", plain)
	}
	failed := ReadStream(strings.NewReader(`{"type":"result","is_error":true,"result":"API Error: 401"}`), nil)
	if !failed.Failed || failed.Answer != "API Error: 401" {
		t.Errorf("a failed run: %+v", failed)
	}
}

// TestThrottle: at most a line a second; one that comes sooner waits and
// only the latest of those is passed on.
func TestThrottle(t *testing.T) {
	now := time.Unix(0, 0)
	var sent []string
	th := &throttle{interval: time.Second, send: func(s string) { sent = append(sent, s) }, now: func() time.Time { return now }}
	th.line("a") // t=0: sent
	now = now.Add(300 * time.Millisecond)
	th.line("b") // waits
	th.line("c") // replaces b
	th.tick()    // too soon
	now = now.Add(800 * time.Millisecond)
	th.tick()    // t=1.1: c
	th.line("d") // waits
	now = now.Add(2 * time.Second)
	th.line("e") // t=3.1: sent, d dropped
	if got := strings.Join(sent, ""); got != "ace" {
		t.Errorf("sent %q, want ace", got)
	}
}
