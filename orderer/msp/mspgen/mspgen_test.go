package mspgen_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kordhq/kord/orderer/msp"
	"github.com/kordhq/kord/orderer/msp/mspgen"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatalf("%s: not PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLayout(t *testing.T) {
	root := t.TempDir()
	if err := mspgen.Generate(root, mspgen.DefaultSpec()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ordererOrganizations/example.com/ca/ca.example.com-cert.pem",
		"ordererOrganizations/example.com/ca/priv_sk",
		"ordererOrganizations/example.com/tlsca/tlsca.example.com-cert.pem",
		"ordererOrganizations/example.com/msp/cacerts/ca.example.com-cert.pem",
		"ordererOrganizations/example.com/msp/tlscacerts/tlsca.example.com-cert.pem",
		"ordererOrganizations/example.com/msp/admincerts",
		"ordererOrganizations/example.com/msp/config.yaml",
		"ordererOrganizations/example.com/orderers/orderer0.example.com/msp/signcerts/orderer0.example.com-cert.pem",
		"ordererOrganizations/example.com/orderers/orderer0.example.com/msp/keystore/priv_sk",
		"ordererOrganizations/example.com/orderers/orderer0.example.com/msp/cacerts/ca.example.com-cert.pem",
		"ordererOrganizations/example.com/orderers/orderer0.example.com/msp/tlscacerts/tlsca.example.com-cert.pem",
		"ordererOrganizations/example.com/orderers/orderer0.example.com/msp/admincerts",
		"ordererOrganizations/example.com/orderers/orderer0.example.com/msp/config.yaml",
		"ordererOrganizations/example.com/orderers/orderer0.example.com/tls/ca.crt",
		"ordererOrganizations/example.com/orderers/orderer0.example.com/tls/server.crt",
		"ordererOrganizations/example.com/orderers/orderer0.example.com/tls/server.key",
		"ordererOrganizations/example.com/users/Admin@example.com/msp/signcerts/Admin@example.com-cert.pem",
		"ordererOrganizations/example.com/users/Admin@example.com/tls/client.crt",
		"peerOrganizations/org1.example.com/msp/config.yaml",
		"peerOrganizations/org1.example.com/peers/peer0.org1.example.com/msp/keystore/priv_sk",
		"peerOrganizations/org1.example.com/peers/peer0.org1.example.com/tls/server.crt",
		"peerOrganizations/org1.example.com/users/Admin@org1.example.com/msp/keystore/priv_sk",
		"peerOrganizations/org1.example.com/users/User1@org1.example.com/msp/signcerts/User1@org1.example.com-cert.pem",
		"peerOrganizations/org2.example.com/users/User1@org2.example.com/msp/keystore/priv_sk",
	}
	for _, p := range want {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("missing %s", p)
		}
	}

	cfg, err := os.ReadFile(filepath.Join(root, "peerOrganizations/org1.example.com/msp/config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Enable: true", "cacerts/ca.org1.example.com-cert.pem", "OrganizationalUnitIdentifier: orderer", "AdminOUIdentifier"} {
		if !strings.Contains(string(cfg), s) {
			t.Errorf("config.yaml lacks %q", s)
		}
	}
}

func TestCertificates(t *testing.T) {
	root := t.TempDir()
	if err := mspgen.Generate(root, mspgen.DefaultSpec()); err != nil {
		t.Fatal(err)
	}
	org1 := mspgen.PeerOrgDir(root, "org1.example.com")
	ca := readCert(t, filepath.Join(org1, "ca", "ca.org1.example.com-cert.pem"))
	if !ca.IsCA || ca.Subject.CommonName != "ca.org1.example.com" || ca.Subject.Organization[0] != "org1.example.com" || len(ca.SubjectKeyId) == 0 {
		t.Fatalf("bad CA: %v", ca.Subject)
	}
	if life := ca.NotAfter.Sub(ca.NotBefore); life < 9*365*24*time.Hour {
		t.Fatalf("CA validity %v", life)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	cases := []struct {
		path, cn, ou string
	}{
		{mspgen.UserMSPDir(org1, "org1.example.com", "User1"), "User1@org1.example.com", "client"},
		{mspgen.UserMSPDir(org1, "org1.example.com", "Admin"), "Admin@org1.example.com", "admin"},
		{mspgen.PeerMSPDir(org1, "org1.example.com", "peer0"), "peer0.org1.example.com", "peer"},
	}
	for _, tc := range cases {
		c := readCert(t, filepath.Join(tc.path, "signcerts", tc.cn+"-cert.pem"))
		if c.Subject.CommonName != tc.cn || len(c.Subject.OrganizationalUnit) != 1 || c.Subject.OrganizationalUnit[0] != tc.ou {
			t.Errorf("%s: subject %v", tc.cn, c.Subject)
		}
		if !bytes.Equal(c.AuthorityKeyId, ca.SubjectKeyId) || len(c.SubjectKeyId) == 0 || c.IsCA {
			t.Errorf("%s: SKI/AKI/IsCA wrong", tc.cn)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s: does not chain to the CA: %v", tc.cn, err)
		}
	}

	ordererOrg := mspgen.OrdererOrgDir(root, "example.com")
	c := readCert(t, filepath.Join(mspgen.OrdererMSPDir(ordererOrg, "example.com", "orderer0"), "signcerts", "orderer0.example.com-cert.pem"))
	if c.Subject.OrganizationalUnit[0] != "orderer" {
		t.Errorf("orderer OU = %v", c.Subject.OrganizationalUnit)
	}
	tlsCert := readCert(t, filepath.Join(mspgen.OrdererTLSDir(ordererOrg, "example.com", "orderer0"), "server.crt"))
	if err := tlsCert.VerifyHostname("orderer0.example.com"); err != nil {
		t.Error(err)
	}
	if err := tlsCert.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
}

func TestGeneratedMSPsLoad(t *testing.T) {
	root := t.TempDir()
	if err := mspgen.Generate(root, mspgen.DefaultSpec()); err != nil {
		t.Fatal(err)
	}
	org1 := mspgen.PeerOrgDir(root, "org1.example.com")
	ordererOrg := mspgen.OrdererOrgDir(root, "example.com")
	for _, c := range []struct{ dir, id string }{
		{mspgen.UserMSPDir(org1, "org1.example.com", "User1"), "Org1MSP"},
		{mspgen.UserMSPDir(org1, "org1.example.com", "Admin"), "Org1MSP"},
		{mspgen.OrdererMSPDir(ordererOrg, "example.com", "orderer0"), "OrdererMSP"},
	} {
		s, err := msp.LoadSigner(c.dir, c.id)
		if err != nil {
			t.Fatalf("%s: %v", c.dir, err)
		}
		sig, err := s.Sign([]byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if err := (&msp.SignatureVerifier{}).Verify(s.Serialize(), []byte("x"), sig); err != nil {
			t.Fatal(err)
		}
	}
}

func TestIdempotent(t *testing.T) {
	root := t.TempDir()
	spec := mspgen.DefaultSpec()
	if err := mspgen.Generate(root, spec); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(mspgen.UserMSPDir(mspgen.PeerOrgDir(root, "org1.example.com"), "org1.example.com", "User1"), "keystore", "priv_sk")
	before, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := mspgen.Generate(root, spec); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("second Generate replaced existing identities")
	}
	// No temporary directories left behind.
	entries, _ := os.ReadDir(filepath.Join(root, "peerOrganizations"))
	if len(entries) != 2 {
		t.Fatalf("peerOrganizations holds %d entries", len(entries))
	}
}

func TestRejectsForeignDirAndBadNames(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "ordererOrganizations", "example.com"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mspgen.Generate(root, mspgen.DefaultSpec()); err == nil || !strings.Contains(err.Error(), "not a generated organization") {
		t.Fatalf("err = %v", err)
	}
	bad := mspgen.Spec{PeerOrgs: []mspgen.OrgSpec{{Name: "X", MSPID: "XMSP", Domain: "../evil"}}}
	if err := mspgen.Generate(t.TempDir(), bad); err == nil {
		t.Fatal("path-escaping domain accepted")
	}
}
