// Package redact decides what of a user's input an error message may
// repeat. A key pasted in the wrong place (a provider's name, a port, a
// component) must never be echoed to a terminal, a log or an API answer.
package redact

import (
	"strconv"
	"strings"
)

// MaxShown is the longest input Quote shows: the stack's names (agents,
// channels, providers, components) are at most 32; keys are longer.
const MaxShown = 32

// Hidden is what Quote shows instead of an input it will not repeat.
const Hidden = "(value not shown)"

// Quote is s quoted when it is short and looks like a name (letters,
// digits and _ . # : / -), else Hidden.
func Quote(s string) string {
	if len(s) > MaxShown || strings.IndexFunc(s, func(r rune) bool { return !nameRune(r) }) >= 0 {
		return Hidden
	}
	return strconv.Quote(s)
}

func nameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.#:/- ", r)
}
