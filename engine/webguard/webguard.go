// Package webguard keeps web pages out of the host's local servers. Every
// listener on 127.0.0.1 is reachable by any page the user opens: a page of
// another origin is told apart by its Origin header, and a page that
// rebinds its own name to 127.0.0.1 (DNS rebinding) by its Host header.
package webguard

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Guard says which requests a local server takes. The zero Guard takes
// requests for loopback or localhost at any port, from no web page.
type Guard struct {
	// Ports are the ports a Host header may name (a Host without a port,
	// as a client of a unix socket sends, is always taken); none: any.
	Ports []int
	// Origins are the browser origins allowed, e.g. the dashboard's own
	// "http://127.0.0.1:3000" (LocalOrigins); a request with any other
	// Origin is refused. The stack's own clients send none.
	Origins []string
}

// ErrRefused is what Check's errors wrap.
var ErrRefused = errors.New("refused")

// Check says why r is refused, or nil.
func (g Guard) Check(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" && !slices.ContainsFunc(g.Origins, func(a string) bool { return strings.EqualFold(a, o) }) {
		return fmt.Errorf("%w: requests from web pages of origin %s", ErrRefused, quote(o))
	}
	if err := g.checkHost(r.Host); err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return nil
}

func (g Guard) checkHost(h string) error {
	if h == "" {
		return errors.New("a request without a Host")
	}
	host, port := h, ""
	if hp, p, err := net.SplitHostPort(h); err == nil {
		host, port = hp, p
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if !strings.EqualFold(host, "localhost") {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.IsLoopback() {
			return fmt.Errorf("host %s (only this machine's loopback: a name that points here is a rebinding page's)", quote(h))
		}
	}
	if port == "" || len(g.Ports) == 0 {
		return nil
	}
	if n, err := strconv.Atoi(port); err == nil && slices.Contains(g.Ports, n) {
		return nil
	}
	return fmt.Errorf("host %s (not a port this server is reached at)", quote(h))
}

// Wrap answers 403 with the reason to what Check refuses.
func (g Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.Check(r); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// LocalOrigins are the origins of a page served on this machine's
// loopback at port.
func LocalOrigins(port int) []string {
	p := strconv.Itoa(port)
	return []string{"http://127.0.0.1:" + p, "http://localhost:" + p, "http://[::1]:" + p}
}

// quote shows a header value only when it is short and plain; an
// attacker's page must not get to write into our logs and errors.
func quote(s string) string {
	if len(s) > 100 || strings.ContainsFunc(s, func(r rune) bool { return r > unicode.MaxASCII || !unicode.IsPrint(r) }) {
		return "(value not shown)"
	}
	return strconv.Quote(s)
}
