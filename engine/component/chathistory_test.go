package component

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestChatHistory: the chat's messages outlive the engine (a new UserChat
// reads them back, in order, the newest chatBacklog), a damaged line is
// skipped and counted, a very long message is kept cut and says so, and
// the file turns over at its size into .1, read back too.
func TestChatHistory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "chat-history.jsonl")
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	msg := func(i int) Message {
		return Message{Time: t0.Add(time.Duration(i) * time.Second), From: "agent-1", To: "#general", Content: fmt.Sprintf("message %d", i)}
	}
	first := &UserChat{History: path}
	if n, err := first.LoadHistory(); n != 0 || err != nil {
		t.Fatalf("no history yet: %d %v", n, err)
	}
	for i := range 3 {
		first.add(msg(i))
	}
	first.add(Message{Time: t0, From: "user", To: "agent-2", Direct: true, Content: "/diff"})
	long := strings.Repeat("é", maxKept) // two bytes a rune: cut within one is not allowed
	first.add(Message{Time: t0, From: "agent-2", To: "user", Direct: true, Content: long})
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the history file: %v %v", fi, err)
	}
	if fi, _ := os.Stat(filepath.Dir(path)); fi.Mode().Perm() != 0o700 {
		t.Errorf("its dir: %v", fi.Mode())
	}
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString("{\"time\": \"2026-12-02T10:00:00Z\", \"from\": trunc\n")
	_ = f.Close()

	again := &UserChat{History: path}
	damaged, err := again.LoadHistory()
	if err != nil || damaged != 1 {
		t.Fatalf("damaged %d, %v; want 1 skipped", damaged, err)
	}
	got := again.Tail(10)
	if len(got) != 5 || got[0] != msg(0) || got[2] != msg(2) || !got[3].Direct || got[3].To != "agent-2" {
		t.Fatalf("read back: %+v", got[:min(len(got), 4)])
	}
	if c := got[4].Content; !strings.HasSuffix(c, fmt.Sprintf("… (%d bytes; the history keeps the first %d)", len(long), maxKept)) ||
		!strings.HasPrefix(c, "éé") || strings.ContainsRune(c, '\uFFFD') {
		t.Errorf("the long message: %d bytes, ends %q", len(c), c[len(c)-60:])
	}
	again.add(msg(9)) // appended after what was there
	third := &UserChat{History: path}
	_, _ = third.LoadHistory()
	if tail := third.Tail(1); len(tail) != 1 || tail[0] != msg(9) {
		t.Errorf("after a new message: %+v", tail)
	}

	// The turn-over: past maxBytes the file becomes .1; both are read.
	rot := filepath.Join(dir, "rot.jsonl")
	h := &chatHistory{path: rot, maxBytes: 2000}
	for i := range 2 * chatBacklog {
		h.add(msg(i))
	}
	h.close()
	if _, err := os.Stat(rot + ".1"); err != nil {
		t.Fatalf("no .1: %v", err)
	}
	if fi, _ := os.Stat(rot); fi.Size() > 2000 {
		t.Errorf("the file is %d bytes, past its 2000", fi.Size())
	}
	back, damaged, err := (&chatHistory{path: rot}).load(chatBacklog)
	if err != nil || damaged != 0 || len(back) == 0 || back[len(back)-1] != msg(2*chatBacklog-1) {
		t.Fatalf("read back after turning over: %d messages, %d damaged, %v", len(back), damaged, err)
	}
	for i := 1; i < len(back); i++ {
		if !back[i].Time.After(back[i-1].Time) {
			t.Fatalf("out of order at %d: %v then %v", i, back[i-1].Time, back[i].Time)
		}
	}
}
