// Command vmcheck is the agent runtime in the real-VM test: run by the
// agent's chat loop as `claude -p` with the task on stdin, it calls the provider through
// the proxy the way a runtime does, dials every host:port in the prompt
// (none may answer: the container has no network), and prints what it
// found as one JSON line, which the agent posts back to the chat.
package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	res := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, os.Getenv("ANTHROPIC_BASE_URL")+"/v1/models", nil)
	if err == nil {
		req.Header.Set("X-Api-Key", os.Getenv("ANTHROPIC_API_KEY"))
		var resp *http.Response
		if resp, err = http.DefaultClient.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			res["proxy"] = resp.Status + " " + strings.TrimSpace(string(b))
		}
	}
	if err != nil {
		res["proxy"] = "error: " + err.Error()
	}
	in, _ := io.ReadAll(os.Stdin) // the task, as the runner gives it
	prompt := string(in)
	for _, w := range strings.Fields(prompt) {
		if _, _, err := net.SplitHostPort(w); err != nil {
			continue
		}
		c, err := (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, "tcp", w)
		if err != nil {
			res["dial "+w] = "error: " + err.Error()
			continue
		}
		_ = c.Close()
		res["dial "+w] = "connected"
	}
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Uid:") || strings.HasPrefix(l, "CapEff:") {
			res[strings.TrimSuffix(strings.Fields(l)[0], ":")] = strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	out, _ := json.Marshal(res)
	os.Stdout.Write(append(out, '\n'))
}
