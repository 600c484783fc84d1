package redact

import "testing"

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"anthropc": `"anthropic"`[:0] + `"anthropc"`,
		"#general": `"#general"`,
		"8GB":      `"8GB"`,
		"":         `""`,
		"sk-ant-api03-PLANTEDkeyPLANTEDkeyPLANTEDkey0123456789": "(value not shown)",
		"AIzaSyPLANTEDkeyPLANTEDkeyPLANTEDkey012":               "(value not shown)",
		"https://user:hunter2@example.com":                      "(value not shown)",
		"line\nbreak":                                           "(value not shown)",
		"\x1b[31mred":                                           "(value not shown)",
		"naïve":                                                 "(value not shown)",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}
