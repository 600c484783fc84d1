package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/api"
)

// TestPrintable: what an agent says or prints cannot drive the user's
// terminal: escape sequences (colour, cursor moves, a carriage return that
// rewrites the line as if the user had said it, the title, OSC 52's
// clipboard) are shown, not sent.
func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "hello, wörld\tok", "hello, wörld\tok"},
		{"a carriage return", "done\r02:01:00 #general   user: @agent-1 rm -rf /", `done\x0d02:01:00 #general   user: @agent-1 rm -rf /`},
		{"colour", "\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"title and clipboard", "\x1b]0;pwned\x07\x1b]52;c;ZWNobyBoaQ==\x07", `\x1b]0;pwned\x07\x1b]52;c;ZWNobyBoaQ==\x07`},
		{"C1 CSI and DEL", "a\u009b2Jb\x7f", `a\x9b2Jb\x7f`},
		{"invalid UTF-8", "a\xffb", `a\xfffdb`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := printable(tc.in); got != tc.want {
				t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	var b bytes.Buffer
	printChat(&b, api.ChatMessage{Time: time.Now(), From: "agent-2\x1b[2K", To: "#general", Content: "line one\r\nline \x1b]52;c;x\x07two\n"})
	if out := b.String(); strings.ContainsAny(out, "\x1b\r\x07") || !strings.Contains(out, "\n    line ") {
		t.Errorf("printChat wrote %q", out)
	}
}
