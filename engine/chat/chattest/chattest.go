// Package chattest serves a chat server over TLS on 127.0.0.1 with a
// throwaway certificate authority: the remote server a client-mode stack
// (mode: client) joins, in tests.
package chattest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/thesystem-dev/thesystem/engine/chat"
)

// Remote is a chat server serving wss:// on 127.0.0.1.
type Remote struct {
	// URL is wss://127.0.0.1:<port>; CAFile holds the CA that signed its
	// certificate (PEM).
	URL, CAFile string
	// CA is that CA's pool.
	CA *x509.CertPool

	t      testing.TB
	addr   string
	cert   tls.Certificate
	opt    chat.Options
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Serve starts a remote chat server with opt until the test ends.
func Serve(t testing.TB, opt chat.Options) *Remote {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "thesystem test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	r := &Remote{t: t, opt: opt, cert: tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}, CA: x509.NewCertPool()}
	r.CA.AddCert(caCert)
	r.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(r.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.URL = "wss://" + r.addr
	r.serve(ln)
	t.Cleanup(r.Stop)
	return r
}

func (r *Remote) serve(ln net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.mu.Lock()
	r.cancel, r.done = cancel, done
	r.mu.Unlock()
	go func() {
		defer close(done)
		_ = chat.New(r.opt).Serve(ctx, tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{r.cert}, MinVersion: tls.VersionTLS12}))
	}()
}

// Stop stops the server (its clients are cut off).
func (r *Remote) Stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel = nil
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// Start starts it again on the same port, a new run (it remembers nothing).
func (r *Remote) Start() {
	r.t.Helper()
	var lc net.ListenConfig
	var ln net.Listener
	var err error
	for range 50 { // the port may take a moment to be free again
		if ln, err = lc.Listen(context.Background(), "tcp", r.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.serve(ln)
}
