// Package anthropictest writes answers of Anthropic's Messages API the way
// it streams them (server-sent events), for the fake upstreams on
// 127.0.0.1 that tests put behind the key proxy.
package anthropictest

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Answer is one streamed answer: a text block, or a tool_use block of
// Tool with ToolInput when Tool is set.
type Answer struct {
	Model                     string
	InputTokens, OutputTokens int
	Text                      string
	Tool                      string
	ToolInput                 any
}

// Stream writes a as server-sent events, flushing each.
func Stream(w http.ResponseWriter, a Answer) {
	w.Header().Set("Content-Type", "text/event-stream")
	ev := func(name string, data any) {
		b, _ := json.Marshal(data)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	ev("message_start", map[string]any{"type": "message_start", "message": map[string]any{"id": "msg_1", "type": "message", "role": "assistant",
		"model": a.Model, "content": []any{}, "stop_reason": nil, "stop_sequence": nil, "usage": map[string]any{"input_tokens": a.InputTokens, "output_tokens": 1}}})
	block, delta, stop := map[string]any{"type": "text", "text": ""}, map[string]any{"type": "text_delta", "text": a.Text}, "end_turn"
	if a.Tool != "" {
		in, _ := json.Marshal(a.ToolInput)
		block = map[string]any{"type": "tool_use", "id": "toolu_01", "name": a.Tool, "input": map[string]any{}}
		delta, stop = map[string]any{"type": "input_json_delta", "partial_json": string(in)}, "tool_use"
	}
	ev("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": block})
	ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": delta})
	ev("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	ev("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": a.OutputTokens}})
	ev("message_stop", map[string]any{"type": "message_stop"})
}
