package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cb "github.com/hyperledger/fabric-protos-go/common"
	ab "github.com/hyperledger/fabric-protos-go/orderer"

	"github.com/kordhq/kord/kafka/embedded"
	"github.com/kordhq/kord/orderer/client"
	"github.com/kordhq/kord/orderer/msp"
	"github.com/kordhq/kord/orderer/msp/mspgen"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a leaf certificate for 127.0.0.1 (server and client use), PEM encoded.
func (ca *testCA) issue(t *testing.T, serial int64, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func (ca *testCA) keyPair(t *testing.T, serial int64, cn string) tls.Certificate {
	t.Helper()
	c, k := ca.issue(t, serial, cn)
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// replaceFile writes data to path the way certificate renewals usually do: a new file
// renamed over the old one.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serverSerial connects with TLS and returns the serial number of the server's certificate.
func serverSerial(t *testing.T, addr string, tc *tls.Config) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestGRPCTLS: a TLS listener that requires client certificates refuses plaintext clients
// and clients without (or with an unknown) certificate, accepts certificates of
// General.TLS.ClientRootCAs and of the channels' MSP TLS CAs (as Fabric), and serves a
// renewed certificate as soon as its files change, without a restart.
func TestGRPCTLS(t *testing.T) {
	serverCA, clientCA, strangerCA := newTestCA(t, "server CA"), newTestCA(t, "client CA"), newTestCA(t, "stranger CA")
	var certFile, keyFile string
	n := newTestNet(t, embedded.Config{}, func(n *testNet) {
		c, k := serverCA.issue(t, 100, "orderer")
		certFile, keyFile = writeFile(t, n.dir, "server.crt", c), writeFile(t, n.dir, "server.key", k)
		n.cfg.General.TLS.Enabled = true
		n.cfg.General.TLS.Certificate, n.cfg.General.TLS.PrivateKey = certFile, keyFile
		n.cfg.General.TLS.RootCAs = []string{writeFile(t, n.dir, "ca.crt", serverCA.certPEM)}
		n.cfg.General.TLS.ClientAuthRequired = true
		n.cfg.General.TLS.ClientRootCAs = []string{writeFile(t, n.dir, "client-ca.crt", clientCA.certPEM)}
	})
	n.start()
	ctx := testCtx(t, 60*time.Second)
	sys := n.srv.Registrar().SystemChannelID()

	// The system channel is readable by the orderer organization; with client certificates
	// required, requests carry the hash of the client's TLS certificate, as Fabric's clients do.
	ordOrg := n.spec.OrdererOrgs[0]
	reader, err := msp.LoadSigner(mspgen.UserMSPDir(mspgen.OrdererOrgDir(n.cryptoDir, ordOrg.Domain), ordOrg.Domain, mspgen.AdminUser), ordOrg.MSPID)
	if err != nil {
		t.Fatal(err)
	}
	deliver := func(tc *tls.Config) error {
		conn := n.dial(tc)
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		var hash []byte
		if tc != nil && len(tc.Certificates) > 0 {
			h := sha256.Sum256(tc.Certificates[0].Certificate[0])
			hash = h[:]
		}
		req, err := client.BoundSeekEnvelope(reader, sys, client.Oldest(), client.Specified(0), ab.SeekInfo_BLOCK_UNTIL_READY, hash)
		if err != nil {
			return err
		}
		st, err := client.Deliver(dctx, conn, req, nil)
		if err == nil && st != cb.Status_SUCCESS {
			err = fmt.Errorf("deliver ended with %s", st)
		}
		return err
	}
	withCert := func(cert *tls.Certificate) *tls.Config {
		tc := &tls.Config{RootCAs: serverCA.pool(), MinVersion: tls.VersionTLS12}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		return tc
	}
	good := clientCA.keyPair(t, 7, "client")
	stranger := strangerCA.keyPair(t, 8, "stranger")
	org1 := n.spec.PeerOrgs[0]
	userTLS := filepath.Join(mspgen.PeerOrgDir(n.cryptoDir, org1.Domain), "users", "User1@"+org1.Domain, "tls")
	orgCert, err := tls.LoadX509KeyPair(filepath.Join(userTLS, "client.crt"), filepath.Join(userTLS, "client.key"))
	if err != nil {
		t.Fatal(err)
	}

	if err := deliver(nil); err == nil {
		t.Error("plaintext client served by a TLS listener")
	} else {
		t.Logf("plaintext client: %v", err)
	}
	if err := deliver(withCert(nil)); err == nil {
		t.Error("client without a certificate served although ClientAuthRequired")
	} else {
		t.Logf("client without a certificate: %v", err)
	}
	if err := deliver(withCert(&stranger)); err == nil {
		t.Error("client with a certificate of an unknown CA served")
	}
	if err := deliver(withCert(&good)); err != nil {
		t.Errorf("client with a certificate of ClientRootCAs: %v", err)
	}
	if err := deliver(withCert(&orgCert)); err != nil {
		t.Errorf("client with Org1's TLS certificate (a channel MSP's TLS CA): %v", err)
	}

	// Renewal: new certificate and key renamed into place; the next handshake gets them.
	raw := withCert(&good)
	if s := serverSerial(t, n.srv.Addr(), raw); s != 100 {
		t.Fatalf("serial before renewal %d", s)
	}
	c2, k2 := serverCA.issue(t, 101, "orderer renewed")
	replaceFile(t, keyFile, k2)
	replaceFile(t, certFile, c2)
	if s := serverSerial(t, n.srv.Addr(), raw); s != 101 {
		t.Errorf("serial after renewal %d, want 101", s)
	}
	if err := deliver(withCert(&good)); err != nil {
		t.Errorf("deliver after renewal: %v", err)
	}
	// A half-done renewal (certificate without its key) keeps the working pair.
	c3, _ := serverCA.issue(t, 102, "orderer half-renewed")
	replaceFile(t, certFile, c3)
	if s := serverSerial(t, n.srv.Addr(), raw); s != 101 {
		t.Errorf("serial with a mismatched key on disk %d, want 101 (the last good pair)", s)
	}
	if !strings.Contains(n.logs.String(), "still serving the previous certificate") {
		t.Error("no warning about the mismatched files")
	}
	c3b, k3b := serverCA.issue(t, 103, "orderer renewed again")
	replaceFile(t, keyFile, k3b)
	replaceFile(t, certFile, c3b)
	if s := serverSerial(t, n.srv.Addr(), raw); s != 103 {
		t.Errorf("serial after completing the renewal %d, want 103", s)
	}
	// Client CAs are reloaded too: drop the client CA, and its clients are refused.
	replaceFile(t, n.cfg.General.TLS.ClientRootCAs[0], strangerCA.certPEM)
	if err := deliver(withCert(&good)); err == nil {
		t.Error("client of a CA removed from ClientRootCAs still served")
	}
	if err := deliver(withCert(&stranger)); err != nil {
		t.Errorf("client of a CA added to ClientRootCAs: %v", err)
	}
}

// TestTLSMisconfigurationNamesTheFile: every bad TLS setting stops the start with an error
// that names the setting and the file.
func TestTLSMisconfigurationNamesTheFile(t *testing.T) {
	ca := newTestCA(t, "ca")
	other := newTestCA(t, "other")
	dir := t.TempDir()
	cert, key := ca.issue(t, 1, "orderer")
	_, otherKey := other.issue(t, 2, "x")
	certFile, keyFile := writeFile(t, dir, "server.crt", cert), writeFile(t, dir, "server.key", key)
	wrongKey := writeFile(t, dir, "wrong.key", otherKey)
	notPEM := writeFile(t, dir, "garbage.pem", []byte("not a certificate"))
	missing := filepath.Join(dir, "missing.crt")

	for _, tc := range []struct {
		name  string
		tweak func(n *testNet)
		want  []string
	}{
		{"missing certificate", func(n *testNet) {
			n.cfg.General.TLS.Certificate = missing
		}, []string{"General.TLS.Certificate", missing, "no such file"}},
		{"certificate file without a certificate", func(n *testNet) {
			n.cfg.General.TLS.Certificate = notPEM
		}, []string{"General.TLS.Certificate", notPEM}},
		{"key of another certificate", func(n *testNet) {
			n.cfg.General.TLS.PrivateKey = wrongKey
		}, []string{"General.TLS.PrivateKey", wrongKey, certFile}},
		{"missing root CA", func(n *testNet) {
			n.cfg.General.TLS.RootCAs = []string{missing}
		}, []string{"General.TLS.RootCAs", missing}},
		{"bad client root CA", func(n *testNet) {
			n.cfg.General.TLS.ClientAuthRequired = true
			n.cfg.General.TLS.ClientRootCAs = []string{notPEM}
		}, []string{"General.TLS.ClientRootCAs", notPEM}},
		{"operations key missing", func(n *testNet) {
			n.cfg.General.TLS.Enabled = false
			n.cfg.Operations.TLS = n.cfg.General.TLS
			n.cfg.Operations.TLS.Enabled = true
			n.cfg.Operations.TLS.PrivateKey = missing
		}, []string{"Operations.TLS.PrivateKey", missing}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNet(t, embedded.Config{}, func(n *testNet) {
				n.cfg.General.TLS.Enabled = true
				n.cfg.General.TLS.Certificate, n.cfg.General.TLS.PrivateKey = certFile, keyFile
				n.cfg.General.TLS.RootCAs = nil
				tc.tweak(n)
			})
			err := n.startErr()
			if err == nil {
				t.Fatal("started")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestOperationsTLS: with Operations.TLS, /healthz and /version are open to any TLS client,
// /metrics and /logspec need a verified client certificate (401 otherwise), as in Fabric;
// /logspec reads and changes the logging spec.
func TestOperationsTLS(t *testing.T) {
	serverCA, clientCA := newTestCA(t, "ops CA"), newTestCA(t, "ops client CA")
	n := newTestNet(t, embedded.Config{}, func(n *testNet) {
		c, k := serverCA.issue(t, 5, "operations")
		n.cfg.Operations.TLS.Enabled = true
		n.cfg.Operations.TLS.Certificate = writeFile(t, n.dir, "ops.crt", c)
		n.cfg.Operations.TLS.PrivateKey = writeFile(t, n.dir, "ops.key", k)
		n.cfg.Operations.TLS.ClientRootCAs = []string{writeFile(t, n.dir, "ops-client-ca.crt", clientCA.certPEM)}
	})
	n.start()
	anon := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serverCA.pool(), MinVersion: tls.VersionTLS12}}}
	cert := clientCA.keyPair(t, 9, "prometheus")
	authed := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serverCA.pool(), Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}}

	do := func(hc *http.Client, method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, n.opsURL(path), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/healthz", "/version"} {
		if code, body := do(anon, "GET", path, ""); code == http.StatusUnauthorized || code >= 500 && code != http.StatusServiceUnavailable {
			t.Errorf("GET %s without a client certificate: %d %s", path, code, body)
		}
	}
	for _, path := range []string{"/metrics", "/logspec"} {
		if code, _ := do(anon, "GET", path, ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a client certificate: %d, want 401", path, code)
		}
	}
	if code, body := do(authed, "GET", "/metrics", ""); code != http.StatusOK || !strings.Contains(body, "fabric_version{") {
		t.Errorf("GET /metrics with a client certificate: %d", code)
	}
	if code, body := do(authed, "GET", "/logspec", ""); code != http.StatusOK || strings.TrimSpace(body) != `{"spec":"info"}` {
		t.Errorf("GET /logspec: %d %s", code, body)
	}
	if code, body := do(authed, "PUT", "/logspec", `{"spec":"info:orderer.consensus.kafka=debug"}`); code != http.StatusNoContent {
		t.Errorf("PUT /logspec: %d %s", code, body)
	}
	if code, body := do(authed, "GET", "/logspec", ""); code != http.StatusOK || strings.TrimSpace(body) != `{"spec":"orderer.consensus.kafka=debug:info"}` {
		t.Errorf("GET /logspec after PUT: %d %s", code, body)
	}
	code, body := do(authed, "PUT", "/logspec", `{"spec":"info:orderer=loud"}`)
	var e struct{ Error string }
	if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, "loud") {
		t.Errorf("PUT a bad spec: %d %s", code, body)
	}
	// The new spec is in force: the Kafka consenter's debug lines appear.
	deadline := time.Now().Add(5 * time.Second)
	n.lg.Logger("x").With("logger", "orderer.consensus.kafka").Debug("probe line after /logspec")
	for !strings.Contains(n.logs.String(), "probe line after /logspec") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(n.logs.String(), "probe line after /logspec") {
		t.Error("debug line of orderer.consensus.kafka not written after PUT /logspec")
	}
	// Plain HTTP to the TLS listener is not served.
	if resp, err := http.Get("http://" + n.srv.OpsAddr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP served by the TLS operations listener")
		}
	}
}

// TestOperationsTLSClientAuthRequired: with Operations.TLS.ClientAuthRequired, a client
// without a certificate is refused at the handshake, even for /healthz.
func TestOperationsTLSClientAuthRequired(t *testing.T) {
	serverCA, clientCA := newTestCA(t, "ops CA"), newTestCA(t, "ops client CA")
	n := newTestNet(t, embedded.Config{}, func(n *testNet) {
		c, k := serverCA.issue(t, 5, "operations")
		n.cfg.Operations.TLS.Enabled = true
		n.cfg.Operations.TLS.ClientAuthRequired = true
		n.cfg.Operations.TLS.Certificate = writeFile(t, n.dir, "ops.crt", c)
		n.cfg.Operations.TLS.PrivateKey = writeFile(t, n.dir, "ops.key", k)
		n.cfg.Operations.TLS.ClientRootCAs = []string{writeFile(t, n.dir, "ops-client-ca.crt", clientCA.certPEM)}
	})
	n.start()
	anon := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serverCA.pool(), MinVersion: tls.VersionTLS12}}}
	if resp, err := anon.Get(n.opsURL("/healthz")); err == nil {
		resp.Body.Close()
		t.Errorf("/healthz served without a client certificate: %d", resp.StatusCode)
	}
	cert := clientCA.keyPair(t, 9, "monitor")
	authed := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serverCA.pool(), Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}}
	resp, err := authed.Get(n.opsURL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics with a client certificate: %d", resp.StatusCode)
	}
}
