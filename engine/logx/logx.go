// Package logx holds the one logging helper the engine's parts share.
package logx

import (
	"io"

	"github.com/sirupsen/logrus"
)

// OrDiscard returns l, or a logger that drops everything when l is nil.
func OrDiscard(l logrus.FieldLogger) logrus.FieldLogger {
	if l != nil {
		return l
	}
	d := logrus.New()
	d.SetOutput(io.Discard)
	return d
}
