package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"
)

// Usage is what a response says it cost, in tokens. In counts every
// input token, cache reads and writes included (what budgets count);
// CacheRead and CacheWrite are those apart, where the provider reports
// them (their prices differ).
type Usage struct {
	In         int64 `json:"tokens_in"`
	Out        int64 `json:"tokens_out"`
	CacheRead  int64 `json:"cache_read_tokens,omitempty"`
	CacheWrite int64 `json:"cache_write_tokens,omitempty"`
}

// usageDoc is the union of the places providers report usage: Anthropic's
// usage (and message.usage in message_start), OpenAI's usage (chat
// completions and responses), Google's usageMetadata.
type usageDoc struct {
	Usage   *usageFields `json:"usage"`
	Message *struct {
		Usage *usageFields `json:"usage"`
	} `json:"message"`
	Response *struct { // OpenAI Responses API stream: response.completed
		Usage *usageFields `json:"usage"`
	} `json:"response"`
	UsageMetadata *struct {
		Prompt     int64 `json:"promptTokenCount"`
		Candidates int64 `json:"candidatesTokenCount"`
	} `json:"usageMetadata"`
}

type usageFields struct {
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
	CacheCreation    int64 `json:"cache_creation_input_tokens"`
	CacheRead        int64 `json:"cache_read_input_tokens"`
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	// OpenAI counts cache reads within the input (Responses) or prompt
	// (Chat Completions) tokens, and says how many apart.
	InputDetails  *cachedFields `json:"input_tokens_details"`
	PromptDetails *cachedFields `json:"prompt_tokens_details"`
}

type cachedFields struct {
	Cached int64 `json:"cached_tokens"`
}

// merge folds a report into u. Streams repeat cumulative counts, so the
// largest value seen wins.
func (u *Usage) merge(f *usageFields) {
	if f == nil {
		return
	}
	u.In = max(u.In, f.InputTokens+f.CacheCreation+f.CacheRead, f.PromptTokens)
	u.Out = max(u.Out, f.OutputTokens, f.CompletionTokens)
	u.CacheRead = max(u.CacheRead, f.CacheRead)
	for _, d := range []*cachedFields{f.InputDetails, f.PromptDetails} {
		if d != nil {
			u.CacheRead = max(u.CacheRead, d.Cached)
		}
	}
	u.CacheWrite = max(u.CacheWrite, f.CacheCreation)
}

func (u *Usage) mergeDoc(b []byte) {
	var d usageDoc
	if json.Unmarshal(b, &d) != nil {
		return
	}
	u.merge(d.Usage)
	if d.Message != nil {
		u.merge(d.Message.Usage)
	}
	if d.Response != nil {
		u.merge(d.Response.Usage)
	}
	if m := d.UsageMetadata; m != nil {
		u.In = max(u.In, m.Prompt)
		u.Out = max(u.Out, m.Candidates)
	}
}

// Limits on what the meter holds in memory.
const (
	maxJSONBody = 4 << 20 // a JSON body larger than this is not parsed for usage
	maxSSELine  = 1 << 20 // an event line larger than this is skipped
)

// meter wraps an upstream response body: it passes every byte through as
// it arrives (streaming is never delayed) and reads the usage on the way,
// from server-sent events line by line or from a JSON body at its end.
type meter struct {
	rc  io.ReadCloser
	sse bool

	mu       sync.Mutex
	n        int64
	buf      []byte
	overflow bool
	usage    Usage
}

func newMeter(rc io.ReadCloser, contentType string) *meter {
	return &meter{rc: rc, sse: bytes.HasPrefix([]byte(contentType), []byte("text/event-stream"))}
}

func (m *meter) Read(p []byte) (int, error) {
	n, err := m.rc.Read(p)
	m.mu.Lock()
	m.n += int64(n)
	if m.sse {
		m.feedSSE(p[:n])
	} else {
		m.feedJSON(p[:n], err == io.EOF)
	}
	m.mu.Unlock()
	return n, err
}

func (m *meter) Close() error { return m.rc.Close() }

func (m *meter) feedJSON(p []byte, eof bool) {
	if !m.overflow {
		if len(m.buf)+len(p) > maxJSONBody {
			m.overflow, m.buf = true, nil
		} else {
			m.buf = append(m.buf, p...)
		}
	}
	if eof && !m.overflow && len(m.buf) > 0 {
		m.usage.mergeDoc(m.buf)
		m.buf = nil
	}
}

var (
	dataPrefix = []byte("data:")
	usageMark  = []byte("sage") // usage, usageMetadata
)

func (m *meter) feedSSE(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(m.buf)+len(p) > maxSSELine {
				m.overflow, m.buf = true, m.buf[:0]
			} else if !m.overflow {
				m.buf = append(m.buf, p...)
			}
			return
		}
		line := p[:i]
		if len(m.buf) > 0 {
			line = append(m.buf, line...)
			m.buf = m.buf[:0]
		}
		if !m.overflow {
			m.line(bytes.TrimSuffix(line, []byte("\r")))
		}
		m.overflow = false
		p = p[i+1:]
	}
}

func (m *meter) line(l []byte) {
	data, ok := bytes.CutPrefix(l, dataPrefix)
	if !ok || !bytes.Contains(data, usageMark) {
		return
	}
	m.usage.mergeDoc(bytes.TrimSpace(data))
}

// result returns the bytes passed through and the usage seen so far.
func (m *meter) result() (int64, Usage) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n, m.usage
}
