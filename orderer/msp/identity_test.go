package msp

import (
	"bytes"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	mspproto "github.com/hyperledger/fabric-protos-go/msp"

	"github.com/kordhq/kord/orderer/msp/msptest"
)

func buildMSP(t testing.TB, fc *mspproto.FabricMSPConfig, v Version) *MSP {
	t.Helper()
	m, err := NewVersion(msptest.Wrap(fc), v)
	if err != nil {
		t.Fatalf("NewVersion: %v", err)
	}
	return m
}

func wantErr(t testing.TB, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to contain %q", err, want)
	}
}

// rsaLeaf issues a certificate with an RSA key, which Fabric's MSP deserializes but
// cannot verify signatures of.
func rsaLeaf(t testing.TB, ca *msptest.CA, ous []string) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(77),
		Subject:      pkix.Name{CommonName: "rsa", OrganizationalUnit: ous},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestValidate(t *testing.T) {
	org := msptest.NewOrg(t, "Org1MSP")
	other := msptest.NewOrg(t, "Org2MSP")
	rogue := msptest.NewRootCA(t, "rogue")
	withNodeOUs := buildMSP(t, org.FabricConfig(true), V1_4_3)
	withoutNodeOUs := buildMSP(t, org.FabricConfig(false), V1_4_3)

	both := org.Issue(t, "both", msptest.CertOptions{OUs: []string{msptest.OUClient, msptest.OUPeer}})
	p384 := org.Issue(t, "p384", msptest.CertOptions{OUs: []string{msptest.OUClient}, Curve: elliptic.P384()})
	clientAuthOnly := org.Issue(t, "tls-like", msptest.CertOptions{OUs: []string{msptest.OUClient}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	subCA := org.Issue(t, "sub-ca", msptest.CertOptions{IsCA: true})
	unknown := rogue.Issue(t, "intruder", msptest.CertOptions{OUs: []string{msptest.OUClient}})
	extraOU := org.Issue(t, "extra", msptest.CertOptions{OUs: []string{"department1", msptest.OUPeer}})
	beforeCA := org.Issue(t, "older-than-ca", msptest.CertOptions{OUs: []string{msptest.OUClient}, NotBefore: time.Now().Add(-60 * 24 * time.Hour)})

	cases := []struct {
		name     string
		msp      *MSP
		idBytes  []byte
		deserErr string // DeserializeIdentity fails (Fabric: no chain, so not an identity)
		want     string // Validate error
	}{
		{"client", withNodeOUs, org.Client.CertPEM, "", ""},
		{"peer", withNodeOUs, org.Peer.CertPEM, "", ""},
		{"admin", withNodeOUs, org.Admin.CertPEM, "", ""},
		{"orderer", withNodeOUs, org.Orderer.CertPEM, "", ""},
		{"expired is still a member (expiry is not MSP validation)", withNodeOUs, org.Expired.CertPEM, "", ""},
		{"P-384 key", withNodeOUs, p384.CertPEM, "", ""},
		{"extra non-node OU", withNodeOUs, extraOU.CertPEM, "", ""},
		{"high-S encoding of a valid certificate", withNodeOUs, msptest.HighSCertPEM(t, org.Client.Cert, org.CA), "", ""},
		{"RSA key deserializes and validates", withNodeOUs, rsaLeaf(t, org.CA, []string{msptest.OUClient}), "", ""},
		{"no node OU", withNodeOUs, org.Member.CertPEM, "", "has no client, peer, admin or orderer node OU"},
		{"two node OUs", withNodeOUs, both.CertPEM, "", "more than one node OU"},
		{"revoked", withNodeOUs, org.Revoked.CertPEM, "", "is revoked by revocation list 0 of MSP Org1MSP"},
		{"revoked without NodeOUs", withoutNodeOUs, org.Revoked.CertPEM, "", "revoked"},
		{"CA certificate", withNodeOUs, subCA.CertPEM, "", "a CA cannot be used as an identity"},
		{"self-signed root as identity", withNodeOUs, org.Root.CertPEM, "", "a CA cannot be used as an identity"},
		{"member without NodeOUs", withoutNodeOUs, org.Member.CertPEM, "", ""},
		{"client without NodeOUs", withoutNodeOUs, org.Client.CertPEM, "", ""},
		{"other organization", withNodeOUs, other.Client.CertPEM, "no valid chain to the CAs of MSP Org1MSP", ""},
		{"unknown CA", withNodeOUs, unknown.CertPEM, "certificate signed by unknown authority", ""},
		{"issued before the CA was valid", withNodeOUs, beforeCA.CertPEM, "no valid chain", ""},
		{"client-auth-only extended key usage (Fabric verifies for server auth)", withNodeOUs, clientAuthOnly.CertPEM, "incompatible key usage", ""},
		{"not PEM", withNodeOUs, []byte("garbage"), "not PEM", ""},
		{"not a certificate", withNodeOUs, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}), "parsing certificate", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.msp.DeserializeIdentity(msptest.Serialized(tc.msp.ID(), tc.idBytes))
			wantErr(t, err, tc.deserErr)
			if err != nil {
				return
			}
			wantErr(t, id.Validate(), tc.want)
			// Validation is cached: a second call agrees.
			if (id.Validate() == nil) != (tc.want == "") {
				t.Fatal("second Validate disagrees")
			}
		})
	}
}

func TestIdentityAccessors(t *testing.T) {
	org := msptest.NewOrg(t, "Org1MSP")
	m := buildMSP(t, org.FabricConfig(true), V1_4_3)
	id, err := m.DeserializeIdentity(org.Client.Serialize())
	if err != nil {
		t.Fatal(err)
	}
	if id.MSPID() != "Org1MSP" {
		t.Fatalf("MSPID = %q", id.MSPID())
	}
	if !id.ExpiresAt().Equal(org.Client.Cert.NotAfter) {
		t.Fatalf("ExpiresAt = %v", id.ExpiresAt())
	}
	expired, err := m.DeserializeIdentity(org.Expired.Serialize())
	if err != nil {
		t.Fatal(err)
	}
	if !expired.ExpiresAt().Before(time.Now()) {
		t.Fatal("expired identity does not report its expiry")
	}
	if got := id.(*X509Identity).String(); got != "Org1MSP/CN=client@Org1MSP" {
		t.Fatalf("String = %q", got)
	}

	// Key: one per certificate, the same for the high-S encoding of that certificate
	// (Fabric's identity identifier hashes the normalised certificate), and different
	// for the same certificate under another MSP.
	highS, err := m.DeserializeIdentity(msptest.Serialized("Org1MSP", msptest.HighSCertPEM(t, org.Client.Cert, org.CA)))
	if err != nil {
		t.Fatal(err)
	}
	if highS.Key() != id.Key() {
		t.Fatal("high-S encoding has another key")
	}
	if expired.Key() == id.Key() {
		t.Fatal("two certificates share a key")
	}
	second := buildMSP(t, func() *mspproto.FabricMSPConfig {
		fc := org.FabricConfig(true)
		fc.Name = "Org1bisMSP"
		return fc
	}(), V1_4_3)
	bis, err := second.DeserializeIdentity(org.Client.SerializeAs("Org1bisMSP"))
	if err != nil {
		t.Fatal(err)
	}
	if bis.Key() == id.Key() {
		t.Fatal("same certificate in two MSPs shares a key")
	}

	if _, err := m.DeserializeIdentity(org.Client.SerializeAs("Org2MSP")); err == nil || !strings.Contains(err.Error(), `identity of MSP "Org2MSP" presented to MSP Org1MSP`) {
		t.Fatalf("wrong MSP ID: %v", err)
	}
	if _, err := m.DeserializeIdentity([]byte{0xff}); err == nil {
		t.Fatal("garbage deserialized")
	}
}

func TestVerifyIdentity(t *testing.T) {
	org := msptest.NewOrg(t, "Org1MSP")
	m := buildMSP(t, org.FabricConfig(true), V1_4_3)
	msg := []byte("payload")
	id, err := m.DeserializeIdentity(org.Client.Serialize())
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, id.Verify(msg, org.Client.Sign(msg)), "")
	wantErr(t, id.Verify(msg, org.Client.SignHighS(msg)), "high S")
	wantErr(t, id.Verify([]byte("other"), org.Client.Sign(msg)), "does not verify")
	wantErr(t, id.Verify(msg, org.Peer.Sign(msg)), "does not verify for identity Org1MSP/CN=client@Org1MSP")
	wantErr(t, id.Verify(msg, nil), "signature is empty")
	wantErr(t, id.Verify(msg, []byte("junk")), "not a DER-encoded ECDSA signature")
	// Fabric's parser ignores bytes after the SEQUENCE and extra elements inside it.
	good := org.Client.Sign(msg)
	wantErr(t, id.Verify(msg, append(append([]byte{}, good...), 0, 1, 2)), "")
	var rs ecdsaSignature
	if _, err := asn1.Unmarshal(good, &rs); err != nil {
		t.Fatal(err)
	}
	extra, err := asn1.Marshal(struct{ R, S, X *big.Int }{rs.R, rs.S, big.NewInt(5)})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, id.Verify(msg, extra), "")
	wrongS, _ := asn1.Marshal(struct{ R, S, X *big.Int }{rs.R, big.NewInt(3), big.NewInt(5)})
	wantErr(t, id.Verify(msg, wrongS), "does not verify")

	p384 := org.Issue(t, "p384", msptest.CertOptions{OUs: []string{msptest.OUClient}, Curve: elliptic.P384()})
	id384, err := m.DeserializeIdentity(p384.Serialize())
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, id384.Verify(msg, p384.Sign(msg)), "")
	wantErr(t, id384.Verify(msg, p384.SignHighS(msg)), "high S")

	rsaID, err := m.DeserializeIdentity(msptest.Serialized("Org1MSP", rsaLeaf(t, org.CA, []string{msptest.OUClient})))
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, rsaID.Verify(msg, org.Client.Sign(msg)), "only ECDSA signatures are verified")

	// An unknown signature hash family is accepted at setup (as Fabric does) and fails
	// every verification.
	fc := org.FabricConfig(true)
	fc.CryptoConfig.SignatureHashFamily = "MD5"
	odd := buildMSP(t, fc, V1_4_3)
	oddID, err := odd.DeserializeIdentity(org.Client.Serialize())
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, oddID.Verify(msg, org.Client.Sign(msg)), `unknown signature hash family "MD5"`)
}

func TestVerifySHA3Family(t *testing.T) {
	org := msptest.NewOrg(t, "Org1MSP")
	fc := org.FabricConfig(true)
	fc.CryptoConfig = &mspproto.FabricCryptoConfig{SignatureHashFamily: "SHA3", IdentityIdentifierHashFunction: "SHA3_256"}
	m := buildMSP(t, fc, V1_4_3)
	id, err := m.DeserializeIdentity(org.Client.Serialize())
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("m")
	// msptest signs SHA-256 digests: under the SHA3 family they must fail.
	wantErr(t, id.Verify(msg, org.Client.Sign(msg)), "does not verify")
	wantErr(t, id.Validate(), "")
}

func TestValidateIntermediates(t *testing.T) {
	org := msptest.NewOrgWithIntermediate(t, "Org1MSP")
	m := buildMSP(t, org.FabricConfig(true), V1_4_3)
	byRoot := org.Root.Issue(t, "by-root", msptest.CertOptions{OUs: []string{msptest.OUClient}})
	byRoot.MSPID = "Org1MSP"

	for _, tc := range []struct {
		name string
		id   *msptest.Identity
		want string
	}{
		{"client of the intermediate", org.Client, ""},
		{"admin of the intermediate", org.Admin, ""},
		{"revoked by the intermediate's CRL", org.Revoked, "revoked"},
		{"issued by the root, which issued an intermediate", byRoot, "bottom of the certification tree"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := m.DeserializeIdentity(tc.id.Serialize())
			if err != nil {
				t.Fatal(err)
			}
			wantErr(t, id.Validate(), tc.want)
		})
	}

	// A CRL of the root does not revoke certificates of the intermediate, even with a
	// matching serial number: lists are matched to the issuer by key identifier.
	fc := org.FabricConfig(true)
	fc.RevocationList = [][]byte{org.Root.CRL(t, org.Client)}
	m2 := buildMSP(t, fc, V1_4_3)
	id, err := m2.DeserializeIdentity(org.Client.Serialize())
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, id.Validate(), "")

	// A list that names the issuer's key identifier but is signed by another key
	// revokes nothing.
	forger := msptest.NewRootCA(t, "forger")
	forger.Cert.SubjectKeyId = org.CA.Cert.SubjectKeyId
	fc = org.FabricConfig(true)
	fc.RevocationList = [][]byte{forger.CRL(t, org.Client)}
	m3 := buildMSP(t, fc, V1_4_3)
	id, err = m3.DeserializeIdentity(org.Client.Serialize())
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, id.Validate(), "")
}

func TestValidateOUIdentifiers(t *testing.T) {
	org := msptest.NewOrgWithIntermediate(t, "Org1MSP")
	fc := org.FabricConfig(false)
	fc.OrganizationalUnitIdentifiers = []*mspproto.FabricOUIdentifier{
		{Certificate: org.CA.CertPEM, OrganizationalUnitIdentifier: msptest.OUClient},
		{Certificate: org.CA.CertPEM, OrganizationalUnitIdentifier: msptest.OUClient}, // duplicate, ignored
		{Certificate: org.CA.CertPEM, OrganizationalUnitIdentifier: msptest.OUAdmin},
	}
	m := buildMSP(t, fc, V1_4_3)
	if got := len(m.ous[msptest.OUClient]); got != 1 {
		t.Fatalf("duplicate OU identifier kept: %d", got)
	}
	for _, tc := range []struct {
		id   *msptest.Identity
		want string
	}{
		{org.Client, ""},
		{org.Admin, ""},
		{org.Peer, "none of the certificate's organizational units [peer] is accepted by MSP Org1MSP"},
		{org.Member, "has no organizational unit"},
	} {
		id, err := m.DeserializeIdentity(tc.id.Serialize())
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, id.Validate(), tc.want)
	}

	// An OU identifier bound to the root does not accept identities of the intermediate:
	// the certifiers (hash of the issuing chain) differ.
	fc = org.FabricConfig(false)
	fc.OrganizationalUnitIdentifiers = []*mspproto.FabricOUIdentifier{{Certificate: org.Root.CertPEM, OrganizationalUnitIdentifier: msptest.OUClient}}
	if _, err := NewVersion(msptest.Wrap(fc), V1_4_3); err == nil || !strings.Contains(err.Error(), "admin cert 0 is not a valid member") {
		t.Fatalf("admin without accepted OU: %v", err)
	}
}

func TestValidateNodeOUCertifiers(t *testing.T) {
	org := msptest.NewOrgWithIntermediate(t, "Org1MSP")
	second := org.Root.NewIntermediateCA(t, "ica2")
	fromSecond := second.Issue(t, "client2", msptest.CertOptions{OUs: []string{msptest.OUClient}})
	fromSecond.MSPID = "Org1MSP"

	fc := org.FabricConfig(true)
	fc.IntermediateCerts = append(fc.IntermediateCerts, second.CertPEM)
	fc.FabricNodeOus.ClientOuIdentifier.Certificate = org.CA.CertPEM
	m := buildMSP(t, fc, V1_4_3)
	for _, tc := range []struct {
		id   *msptest.Identity
		want string
	}{
		{org.Client, ""},
		{fromSecond, `node OU "client" is not issued by the CA that MSP Org1MSP binds it to`},
	} {
		id, err := m.DeserializeIdentity(tc.id.Serialize())
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, id.Validate(), tc.want)
	}
}

func TestValidateNameConstraints(t *testing.T) {
	root := msptest.NewRootCA(t, "root")
	constrained := root.Issue(t, "constrained", msptest.CertOptions{
		IsCA:     true,
		Template: &x509.Certificate{PermittedDNSDomains: []string{"example.com"}},
	}).AsCA()
	fc := &mspproto.FabricMSPConfig{
		Name:              "NCMSP",
		RootCerts:         [][]byte{root.CertPEM},
		IntermediateCerts: [][]byte{constrained.CertPEM},
	}
	admin := constrained.Issue(t, "Admin@nc", msptest.CertOptions{}) // "@": not a host name
	fc.Admins = [][]byte{admin.CertPEM}
	m := buildMSP(t, fc, V1_4_3)

	hostNoSAN := constrained.Issue(t, "peer0.example.com", msptest.CertOptions{})
	hostWithSAN := constrained.Issue(t, "peer1.example.com", msptest.CertOptions{DNSNames: []string{"peer1.example.com"}})
	_, err := m.DeserializeIdentity(msptest.Serialized("NCMSP", hostNoSAN.CertPEM))
	wantErr(t, err, "no valid chain")
	id, err := m.DeserializeIdentity(msptest.Serialized("NCMSP", hostWithSAN.CertPEM))
	wantErr(t, err, "")
	wantErr(t, id.Validate(), "")
}

func TestLooksLikeHostname(t *testing.T) {
	for host, want := range map[string]bool{
		"peer0.example.com": true, "*.example.com": true, "a_b:c": true, "host.": true,
		"": false, "a..b": false, "-a": false, "User1@org1.example.com": false, "a b": false, "a.*": false,
	} {
		if got := looksLikeHostname(host); got != want {
			t.Errorf("looksLikeHostname(%q) = %t", host, got)
		}
	}
}

func TestLowSCertificate(t *testing.T) {
	org := msptest.NewOrg(t, "Org1MSP")
	high, _ := pem.Decode(msptest.HighSCertPEM(t, org.Client.Cert, org.CA))
	cert, err := x509.ParseCertificate(high.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(cert.Raw, org.Client.Cert.Raw) {
		t.Fatal("high-S variant is the same bytes")
	}
	low, err := lowSCertificate(cert, org.CA.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(low.Raw, org.Client.Cert.Raw) {
		t.Fatal("normalising the high-S variant does not give the original certificate")
	}
	same, err := lowSCertificate(org.Client.Cert, org.CA.Cert)
	if err != nil || same != org.Client.Cert {
		t.Fatalf("a low-S certificate is rewritten: %v", err)
	}
	if _, err := lowSCertificate(&x509.Certificate{Signature: []byte{1}}, org.CA.Cert); err == nil {
		t.Fatal("garbage signature accepted")
	}
	rsaIssuer := &x509.Certificate{PublicKey: &rsa.PublicKey{}}
	if c, err := lowSCertificate(cert, rsaIssuer); err != nil || c != cert {
		t.Fatal("non-ECDSA issuer")
	}
}

func TestIDCacheBound(t *testing.T) {
	c := newIDCache(4)
	ids := make([]*X509Identity, 10)
	for i := range ids {
		ids[i] = &X509Identity{key: string(rune('a' + i))}
		c.put([]byte{byte(i)}, ids[i])
		if c.len() > 4 {
			t.Fatalf("cache grew to %d", c.len())
		}
	}
	if c.get([]byte{9}) != ids[9] || c.get([]byte{8}) != ids[8] {
		t.Fatal("recent entries evicted")
	}
	if c.get([]byte{0}) != nil {
		t.Fatal("oldest entry kept")
	}
	// A hit in the old generation survives the next rotation.
	c = newIDCache(4)
	c.put([]byte{1}, ids[1])
	c.put([]byte{2}, ids[2])
	c.put([]byte{3}, ids[3]) // 1,2 old
	if c.get([]byte{1}) != ids[1] {
		t.Fatal("old generation lost")
	}
	c.put([]byte{4}, ids[4])
	if c.get([]byte{1}) != ids[1] {
		t.Fatal("promoted entry lost")
	}
}

func TestNilPrincipalAndManager(t *testing.T) {
	org := msptest.NewOrg(t, "Org1MSP")
	m := buildMSP(t, org.FabricConfig(true), V1_4_3)
	id, err := m.DeserializeIdentity(org.Client.Serialize())
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, id.SatisfiesPrincipal(nil), "nil")
	var mg *Manager
	if _, err := mg.DeserializeIdentity(org.Client.Serialize()); err == nil {
		t.Fatal("nil manager")
	}
	var nilMSP *MSP
	if _, err := nilMSP.DeserializeIdentity(org.Client.Serialize()); err == nil {
		t.Fatal("nil MSP")
	}
}
