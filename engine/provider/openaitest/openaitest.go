// Package openaitest writes answers of OpenAI's Responses API the way it
// streams them (server-sent events), for the fake upstreams on 127.0.0.1
// that tests put behind the key proxy (the official SDK and the Codex CLI
// read them).
package openaitest

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Answer is one streamed response: a message with Text, or a call of the
// function Call with the JSON arguments Args when Call is set.
type Answer struct {
	Model                     string
	InputTokens, CachedTokens int
	OutputTokens              int
	Text                      string
	Call, Args                string
}

// Stream writes a as server-sent events, flushing each.
func Stream(w http.ResponseWriter, a Answer) {
	w.Header().Set("Content-Type", "text/event-stream")
	seq := 0
	ev := func(name string, data map[string]any) {
		data["type"], data["sequence_number"] = name, seq
		seq++
		b, _ := json.Marshal(data)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	response := func(status string, output []any, usage any) map[string]any {
		return map[string]any{"id": "resp_1", "object": "response", "created_at": 1, "status": status, "model": a.Model,
			"output": output, "usage": usage, "parallel_tool_calls": true, "tool_choice": "auto", "tools": []any{}}
	}
	ev("response.created", map[string]any{"response": response("in_progress", []any{}, nil)})
	item := map[string]any{"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
		"content": []any{map[string]any{"type": "output_text", "text": a.Text, "annotations": []any{}}}}
	if a.Call != "" {
		item = map[string]any{"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": a.Call, "arguments": a.Args, "status": "completed"}
	}
	ev("response.output_item.added", map[string]any{"output_index": 0, "item": item})
	if a.Call == "" {
		ev("response.output_text.delta", map[string]any{"output_index": 0, "item_id": "msg_1", "content_index": 0, "delta": a.Text})
	}
	ev("response.output_item.done", map[string]any{"output_index": 0, "item": item})
	ev("response.completed", map[string]any{"response": response("completed", []any{item}, map[string]any{
		"input_tokens": a.InputTokens, "input_tokens_details": map[string]any{"cached_tokens": a.CachedTokens},
		"output_tokens": a.OutputTokens, "output_tokens_details": map[string]any{"reasoning_tokens": 0},
		"total_tokens": a.InputTokens + a.OutputTokens,
	})})
}
