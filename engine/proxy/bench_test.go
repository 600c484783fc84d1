package proxy

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The benchmarks run the same request against the fake upstream directly
// and through the proxy, interleaved in one run, and report what the proxy
// adds: latency percentiles, time to the first streamed byte, throughput
// and allocations. `make bench` runs them.

const benchBody = `{"model":"claude-bench","max_tokens":64,"messages":[{"role":"user","content":"hello"}]}`

type benchSetup struct {
	h      *harness
	client *http.Client
}

func newBench(b *testing.B) *benchSetup {
	b.Helper()
	h := newHarnessTB(b, func(o *Options) {
		f, err := os.Create(filepath.Join(b.TempDir(), "audit.log"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = f.Close() })
		o.Audit = f
	})
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	return &benchSetup{h: h, client: &http.Client{Transport: tr}}
}

// once sends one request and returns the latency to the full body, and to
// its first byte.
func (s *benchSetup) once(b *testing.B, base string, withToken bool, stream bool) (total, first time.Duration) {
	body := benchBody
	if stream {
		body = strings.Replace(benchBody, `"max_tokens"`, `"stream":true,"max_tokens"`, 1)
	}
	req, _ := http.NewRequestWithContext(b.Context(), "POST", base+"/v1/messages", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	if withToken {
		req.Header.Set("X-Api-Key", s.h.user)
	}
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var one [1]byte
	if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
		b.Fatal(err)
	}
	first = time.Since(start)
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		b.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("status %d", resp.StatusCode)
	}
	return time.Since(start), first
}

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// benchOverhead alternates direct and proxied requests so both see the
// same machine state.
func benchOverhead(b *testing.B, stream bool) {
	s := newBench(b)
	direct, proxied := s.h.up.srv.URL, s.h.url+"/anthropic"
	for range 50 { // warm both connection pools
		s.once(b, direct, false, stream)
		s.once(b, proxied, true, stream)
	}
	var dTot, pTot, dFirst, pFirst []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t, f := s.once(b, direct, false, stream)
		dTot, dFirst = append(dTot, t), append(dFirst, f)
		t, f = s.once(b, proxied, true, stream)
		pTot, pFirst = append(pTot, t), append(pFirst, f)
	}
	b.StopTimer()
	if stream {
		b.ReportMetric(us(pct(dFirst, .5)), "direct-first-byte-p50-µs")
		b.ReportMetric(us(pct(pFirst, .5)), "proxy-first-byte-p50-µs")
		b.ReportMetric(us(pct(pFirst, .5)-pct(dFirst, .5)), "added-first-byte-p50-µs")
		b.ReportMetric(us(pct(pFirst, .99)-pct(dFirst, .99)), "added-first-byte-p99-µs")
	}
	b.ReportMetric(us(pct(dTot, .5)), "direct-p50-µs")
	b.ReportMetric(us(pct(pTot, .5)), "proxy-p50-µs")
	b.ReportMetric(us(pct(pTot, .5)-pct(dTot, .5)), "added-p50-µs")
	b.ReportMetric(us(pct(dTot, .99)), "direct-p99-µs")
	b.ReportMetric(us(pct(pTot, .99)), "proxy-p99-µs")
	b.ReportMetric(us(pct(pTot, .99)-pct(dTot, .99)), "added-p99-µs")
	b.ReportMetric(float64(pct(pTot, .5))/float64(pct(dTot, .5)), "p50-ratio")
}

func BenchmarkOverheadJSON(b *testing.B)   { benchOverhead(b, false) }
func BenchmarkOverheadStream(b *testing.B) { benchOverhead(b, true) }

// BenchmarkThroughput: requests/s with 16 concurrent clients on all cores,
// direct and through the proxy, back to back in one run.
func BenchmarkThroughput(b *testing.B) {
	s := newBench(b)
	const workers = 16
	rate := func(base string, withToken bool, n int) float64 {
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range workers {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					s.once(b, base, withToken, false)
				}
			})
		}
		wg.Wait()
		return float64(n) / time.Since(start).Seconds()
	}
	n := max(b.N, 2000)
	rate(s.h.up.srv.URL, false, 200) // warm up
	rate(s.h.url+"/anthropic", true, 200)
	b.ResetTimer()
	d := rate(s.h.up.srv.URL, false, n)
	p := rate(s.h.url+"/anthropic", true, n)
	b.StopTimer()
	b.ReportMetric(d, "direct-req/s")
	b.ReportMetric(p, "proxy-req/s")
	b.ReportMetric(p/d, "throughput-ratio")
	b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "cores")
}

// BenchmarkMemory: heap bytes and allocations the proxy adds per request
// (client and fake upstream run in this process too, and cancel out).
func BenchmarkMemory(b *testing.B) {
	s := newBench(b)
	measure := func(base string, withToken bool, n int) (bytesPer, allocsPer float64) {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			s.once(b, base, withToken, false)
		}
		runtime.ReadMemStats(&after)
		return float64(after.TotalAlloc-before.TotalAlloc) / float64(n), float64(after.Mallocs-before.Mallocs) / float64(n)
	}
	n := max(b.N, 1000)
	measure(s.h.url+"/anthropic", true, 100)
	b.ResetTimer()
	dB, dA := measure(s.h.up.srv.URL, false, n)
	pB, pA := measure(s.h.url+"/anthropic", true, n)
	b.StopTimer()
	b.ReportMetric(pB-dB, "added-B/req")
	b.ReportMetric(pA-dA, "added-allocs/req")
	b.ReportMetric(pB/dB, "bytes-ratio")
}
