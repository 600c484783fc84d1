package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// Route errors.
var (
	errBadPath       = errors.New("malformed path")
	errNoToken       = errors.New("no token: send it as Authorization: Bearer <token>, x-api-key or x-goog-api-key")
	errAmbiguousAuth = errors.New("several different credentials in one request")
)

// splitRoute splits an escaped request path "/<provider>/<rest>" into the
// provider and the raw rest ("" or starting with "/"). It refuses anything
// that could walk from one provider to another or out of the API: dot
// segments, empty segments, encoded dots, slashes or backslashes, control
// characters.
func splitRoute(escaped string) (provider, rest string, err error) {
	if !strings.HasPrefix(escaped, "/") || len(escaped) > 8192 {
		return "", "", errBadPath
	}
	lower := strings.ToLower(escaped)
	for _, bad := range []string{"%2e", "%2f", "%5c", "%00", "\\"} {
		if strings.Contains(lower, bad) {
			return "", "", errBadPath
		}
	}
	for _, r := range escaped {
		if r < 0x21 || r == 0x7f {
			return "", "", errBadPath
		}
	}
	segs := strings.Split(escaped[1:], "/")
	for i, s := range segs {
		if s == "." || s == ".." || (s == "" && i != len(segs)-1) {
			return "", "", errBadPath
		}
	}
	provider = segs[0]
	rest = escaped[1+len(provider):]
	if provider == "" {
		return "", "", errBadPath
	}
	if _, err := url.PathUnescape(escaped); err != nil {
		return "", "", errBadPath
	}
	return provider, rest, nil
}

// credentialHeaders are every header a client might put a credential in.
// All are removed before the real key is injected.
func credentialHeaders() []string {
	return []string{"Authorization", "X-Api-Key", "X-Goog-Api-Key", "Api-Key", "Proxy-Authorization", "Cookie"}
}

// extractToken finds the caller's token in the places provider SDKs put
// their key: Authorization: Bearer, x-api-key, x-goog-api-key, or Google's
// ?key= query parameter. Different values in two places are refused.
func extractToken(h http.Header, q url.Values) (string, error) {
	var found []string
	if a := h.Values("Authorization"); len(a) > 0 {
		for _, v := range a {
			scheme, tok, ok := strings.Cut(v, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return "", errNoToken
			}
			found = append(found, strings.TrimSpace(tok))
		}
	}
	for _, name := range []string{"X-Api-Key", "X-Goog-Api-Key"} {
		found = append(found, h.Values(name)...)
	}
	found = append(found, q["key"]...)
	tok := ""
	for _, f := range found {
		switch {
		case f == "":
		case tok == "":
			tok = f
		case f != tok:
			return "", errAmbiguousAuth
		}
	}
	if tok == "" {
		return "", errNoToken
	}
	return tok, nil
}

// modelOf reads the model a request asks for: the "model" field of a JSON
// body, or Google's /models/<name>:<method> path. Only a short, printable
// value is returned, since it goes into the audit log.
func modelOf(body []byte, rest string) string {
	var m string
	if i := strings.Index(rest, "/models/"); i >= 0 {
		m = rest[i+len("/models/"):]
		if j := strings.IndexAny(m, ":/"); j >= 0 {
			m = m[:j]
		}
	} else {
		m = jsonModel(body)
	}
	if len(m) > 128 {
		m = m[:128]
	}
	if strings.IndexFunc(m, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
		return ""
	}
	return m
}
