package kafka

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/kordhq/kord/kafka/embedded"
)

// testPKI makes a CA and a server certificate for 127.0.0.1, PEM encoded.
func testPKI(t *testing.T) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func TestTLS(t *testing.T) {
	caPEM, certPEM, keyPEM := testPKI(t)
	serverCert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, embedded.Config{TLS: &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}})
	ctx := testCtx(t, 20*time.Second)
	o := testOptions(c.Addrs())
	o.TLS = TLSOptions{Enabled: true, CertPEM: certPEM, KeyPEM: keyPEM, RootCAsPEM: [][]byte{caPEM}}
	mustEnsure(t, ctx, o, "tls", 1)
	p := mustProducer(t, ctx, o)
	if _, err := p.Produce(ctx, "tls", MarshalConnect()); err != nil {
		t.Fatal(err)
	}

	bad := o
	bad.TLS.RootCAsPEM = [][]byte{[]byte("not pem")}
	if _, err := NewSaramaConfig(ctx, bad); !IsNonRetriable(err) {
		t.Fatalf("bad root CA: %v", err)
	}
	bad = o
	bad.TLS.KeyPEM = nil
	if _, err := NewSaramaConfig(ctx, bad); !IsNonRetriable(err) {
		t.Fatalf("certificate without key: %v", err)
	}
	// Untrusted server: the system pool does not know the test CA.
	bad = o
	bad.TLS.RootCAsPEM = nil
	if _, err := NewProducer(ctx, bad); err == nil {
		t.Fatal("untrusted broker certificate accepted")
	}
}
