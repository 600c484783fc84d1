package proxy

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// AuditRecord is one line of the audit log: who spent what, where. It has
// no field that could hold a key or a token.
type AuditRecord struct {
	Time       time.Time `json:"time"`
	Agent      string    `json:"agent,omitempty"`
	Method     string    `json:"method"`
	Provider   string    `json:"provider,omitempty"`
	Path       string    `json:"path"`
	Model      string    `json:"model,omitempty"`
	Status     int       `json:"status"`
	BytesIn    int64     `json:"bytes_in"`
	BytesOut   int64     `json:"bytes_out"`
	DurationMS float64   `json:"duration_ms"`
	Usage
	// Refused says why the proxy answered itself instead of forwarding.
	Refused string `json:"refused,omitempty"`
}

// auditLog writes records as JSON lines; concurrent requests never
// interleave within a line.
type auditLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (a *auditLog) write(r *AuditRecord) {
	if a.w == nil {
		return
	}
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	b = append(b, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	_, _ = a.w.Write(b)
}
