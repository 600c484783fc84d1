// Command netcheck runs inside a test agent container: it reports, as
// JSON in <socket dir>/result.json, what it could reach.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func get(url string, hdr map[string]string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return "error: " + err.Error()
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Status + " " + strings.TrimSpace(string(b))
}

func dial(addr string) string {
	c, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return "error: " + err.Error()
	}
	_ = c.Close()
	return "connected"
}

// talk, for `netcheck talk <code> <pause>`: a line on stdout and one on
// stderr, the pause, a last line, and the exit code.
func talk(code, pause string) {
	n, _ := strconv.Atoi(code)
	d, _ := time.ParseDuration(pause)
	fmt.Println("out-1")
	fmt.Fprintln(os.Stderr, "err-1")
	time.Sleep(d)
	fmt.Println("out-2")
	os.Exit(n)
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "talk" {
		talk(os.Args[2], os.Args[3])
	}
	res := map[string]string{
		"proxy": get(os.Getenv("ANTHROPIC_BASE_URL")+"/v1/models", map[string]string{"X-Api-Key": os.Getenv("ANTHROPIC_API_KEY")}),
		"chat":  get(strings.Replace(os.Getenv("AGENTCHAT_URL"), "ws://", "http://", 1)+"/health", nil),
		"uid":   func() string { b, _ := os.ReadFile("/proc/self/status"); return string(b) }(),
	}
	for _, a := range os.Args[1:] {
		res["dial "+a] = dial(a)
	}
	if err := os.WriteFile("/tmp/probe", []byte("x"), 0o600); err != nil {
		res["tmp"] = "error: " + err.Error()
	} else {
		res["tmp"] = "writable"
	}
	if err := os.WriteFile("/etc/probe", []byte("x"), 0o600); err != nil {
		res["rootfs"] = "error: " + err.Error()
	} else {
		res["rootfs"] = "writable"
	}
	b, _ := json.Marshal(res)
	if err := os.WriteFile("/workspace/result.json", b, 0o644); err != nil {
		os.Stderr.Write(b)
		os.Exit(3)
	}
}
