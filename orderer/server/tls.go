package server

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/kordhq/kord/config"
)

// tlsFiles is the TLS material of one listener, read from the files named by a TLS section
// (General.TLS, Operations.TLS) and read again whenever one of them changes on disk, so that a
// renewed certificate is served without a restart. The files are checked (stat) at every
// handshake; a change is loaded only if the new set is valid (certificate and key match, CA
// files hold certificates), otherwise the material in use stays and a warning is logged once
// for that state of the files.
type tlsFiles struct {
	prefix     string // config key of the section, for messages
	t          config.TLS
	log        *slog.Logger
	clientAuth tls.ClientAuthType
	nextProtos []string

	mu        sync.Mutex
	stamps    []os.FileInfo // of CertFile, KeyFile, ClientRootCAs... when last loaded or tried
	cert      *tls.Certificate
	clientCAs *x509.CertPool
	extraCAs  [][]byte // PEM or DER certificates added to the client CAs (channel MSPs' TLS roots)
	reloads   int
}

// newTLSFiles loads the section's files. Any problem is an error naming the key and the file.
// clientAuth is the client certificate mode when the section does not require client
// certificates (ClientAuthRequired false).
func newTLSFiles(prefix string, t config.TLS, optional tls.ClientAuthType, nextProtos []string, log *slog.Logger) (*tlsFiles, error) {
	f := &tlsFiles{prefix: prefix, t: t, log: log, clientAuth: optional, nextProtos: nextProtos}
	if t.ClientAuthRequired {
		f.clientAuth = tls.RequireAndVerifyClientCert
	}
	for _, ca := range t.RootCAs {
		if _, err := readCerts(ca); err != nil {
			return nil, fmt.Errorf("%s.RootCAs=%q: %w", prefix, ca, err)
		}
	}
	stamps := f.stat()
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	f.stamps, f.cert, f.clientCAs = stamps, cert, pool
	return f, nil
}

func (f *tlsFiles) files() []string {
	return append([]string{f.t.Certificate, f.t.PrivateKey}, f.t.ClientRootCAs...)
}

// stat returns the current state of every file (nil entries for files that cannot be read).
func (f *tlsFiles) stat() []os.FileInfo {
	names := f.files()
	out := make([]os.FileInfo, len(names))
	for i, n := range names {
		out[i], _ = os.Stat(n)
	}
	return out
}

func changed(old, cur []os.FileInfo) bool {
	if len(old) != len(cur) {
		return true
	}
	for i := range old {
		a, b := old[i], cur[i]
		if (a == nil) != (b == nil) {
			return true
		}
		if a != nil && (!os.SameFile(a, b) || !a.ModTime().Equal(b.ModTime()) || a.Size() != b.Size()) {
			return true
		}
	}
	return false
}

// load reads the key pair and the client CAs.
func (f *tlsFiles) load() (*tls.Certificate, *x509.CertPool, error) {
	certPEM, err := os.ReadFile(f.t.Certificate)
	if err != nil {
		return nil, nil, fmt.Errorf("%s.Certificate=%q: %w", f.prefix, f.t.Certificate, err)
	}
	if _, err := parseCerts(certPEM); err != nil {
		return nil, nil, fmt.Errorf("%s.Certificate=%q: %w", f.prefix, f.t.Certificate, err)
	}
	keyPEM, err := os.ReadFile(f.t.PrivateKey)
	if err != nil {
		return nil, nil, fmt.Errorf("%s.PrivateKey=%q: %w", f.prefix, f.t.PrivateKey, err)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || !strings.Contains(b.Type, "PRIVATE KEY") {
		return nil, nil, fmt.Errorf("%s.PrivateKey=%q: no PEM private key in the file", f.prefix, f.t.PrivateKey)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("%s.PrivateKey=%q does not go with %s.Certificate=%q: %w", f.prefix, f.t.PrivateKey, f.prefix, f.t.Certificate, err)
	}
	pool := x509.NewCertPool()
	for _, ca := range f.t.ClientRootCAs {
		certs, err := readCerts(ca)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.ClientRootCAs=%q: %w", f.prefix, ca, err)
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
	}
	for _, raw := range f.extraCAs {
		certs, err := parseCerts(raw)
		if err != nil {
			continue // checked when they were set
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
	}
	return &pair, pool, nil
}

// current returns the material in force, reloading it first if a file changed.
func (f *tlsFiles) current() (*tls.Certificate, *x509.CertPool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cur := f.stat(); changed(f.stamps, cur) {
		f.stamps = cur
		cert, pool, err := f.load()
		if err != nil {
			f.log.Warn("TLS files changed but cannot be loaded; still serving the previous certificate", "section", f.prefix, "err", err)
		} else {
			f.cert, f.clientCAs = cert, pool
			f.reloads++
			f.log.Info("TLS certificate reloaded from disk", "section", f.prefix, "certificate", f.t.Certificate, "subject", leafSubject(cert))
		}
	}
	return f.cert, f.clientCAs
}

// setExtraCAs replaces the additional client CAs (certificates, PEM or DER) and rebuilds the
// pool.
func (f *tlsFiles) setExtraCAs(certs [][]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.extraCAs = certs
	if cert, pool, err := f.load(); err == nil {
		f.cert, f.clientCAs = cert, pool
	}
}

// config is the server TLS configuration: every handshake gets the material in force.
func (f *tlsFiles) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: f.nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := f.current()
			return &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{*cert},
				ClientCAs:    pool,
				ClientAuth:   f.clientAuth,
				NextProtos:   f.nextProtos,
			}, nil
		},
	}
}

func leafSubject(c *tls.Certificate) string {
	if len(c.Certificate) == 0 {
		return ""
	}
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return ""
	}
	return x.Subject.String()
}

func readCerts(path string) ([]*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCerts(raw)
}

// parseCerts reads every certificate of a PEM bundle, or one DER certificate.
func parseCerts(raw []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := raw
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("bad certificate in PEM block %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 && len(bytes.TrimSpace(raw)) > 0 && !bytes.Contains(raw, []byte("-----BEGIN")) {
		c, err := x509.ParseCertificate(raw)
		if err == nil {
			return []*x509.Certificate{c}, nil
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate in the file")
	}
	return out, nil
}
