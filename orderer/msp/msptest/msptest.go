// Package msptest makes X.509 material for tests of code that deals with Fabric MSPs:
// CAs (root and intermediate), NodeOU-classified identities (client, peer, admin,
// orderer), expired and revoked identities with a CRL, MSP configurations for an
// organization with or without NodeOUs, serialized identities, MSP principals, low-S
// signatures and deliberately high-S ones.
//
// It depends only on crypto and the Fabric protos (not on orderer/msp), so the tests of
// any package, including those orderer/msp depends on, can use it. Helpers take a
// testing.TB and fail the test on errors, which do not happen with valid arguments.
package msptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
)

// Node OU names used by NewOrg, the names cryptogen and Fabric CA use.
const (
	OUClient  = "client"
	OUPeer    = "peer"
	OUAdmin   = "admin"
	OUOrderer = "orderer"
)

// CA is a certificate authority able to issue certificates and CRLs.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Key     *ecdsa.PrivateKey
}

// Identity is an issued certificate with its key and the MSP ID it is serialized with.
type Identity struct {
	MSPID   string
	Cert    *x509.Certificate
	CertPEM []byte
	Key     *ecdsa.PrivateKey
}

// CertOptions adjust an issued certificate; the zero value gives a P-256 leaf valid from
// an hour ago for a year, key usage digital signature and no extended key usage (like
// Fabric CA enrollment certificates).
type CertOptions struct {
	OUs                 []string
	NotBefore, NotAfter time.Time
	Curve               elliptic.Curve
	IsCA                bool
	ExtKeyUsage         []x509.ExtKeyUsage
	DNSNames            []string
	// Template, when set, is used as the starting point instead of a fresh template
	// (serial, subject CN, keys and issuer fields are still filled in).
	Template *x509.Certificate
}

// Validity of CAs: they predate every certificate they issue, including expired ones,
// because Fabric requires the CA to be valid when the certificate was issued.
var (
	caNotBefore = time.Now().Add(-30 * 24 * time.Hour).Truncate(time.Second)
	caNotAfter  = time.Now().Add(10 * 365 * 24 * time.Hour).Truncate(time.Second)
)

// NewRootCA makes a self-signed P-256 root CA.
func NewRootCA(tb testing.TB, name string) *CA {
	tb.Helper()
	key := newKey(tb, elliptic.P256())
	tmpl := caTemplate(tb, name, &key.PublicKey)
	return makeCA(tb, tmpl, tmpl, key, key)
}

// NewIntermediateCA makes a CA issued by ca.
func (ca *CA) NewIntermediateCA(tb testing.TB, name string) *CA {
	tb.Helper()
	key := newKey(tb, elliptic.P256())
	tmpl := caTemplate(tb, name, &key.PublicKey)
	tmpl.NotBefore = caNotBefore.Add(time.Hour)
	return makeCA(tb, tmpl, ca.Cert, key, ca.Key)
}

func caTemplate(tb testing.TB, name string, pub *ecdsa.PublicKey) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: name, Organization: []string{name}},
		NotBefore:             caNotBefore,
		NotAfter:              caNotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          ski(pub),
	}
}

func makeCA(tb testing.TB, tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) *CA {
	tb.Helper()
	cert, der := create(tb, tmpl, parent, &key.PublicKey, parentKey)
	return &CA{Cert: cert, CertPEM: pemCert(der), Key: key}
}

// create signs a certificate until its signature has a low S. Go's signer leaves S
// random, and Fabric compares certificates after normalising S; canonical material keeps
// the raw bytes equal to what Fabric compares (see HighSCertPEM for the other form).
func create(tb testing.TB, tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, parentKey *ecdsa.PrivateKey) (*x509.Certificate, []byte) {
	tb.Helper()
	for range 64 {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
		if err != nil {
			tb.Fatalf("msptest: creating certificate %s: %v", tmpl.Subject.CommonName, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			tb.Fatalf("msptest: parsing certificate %s: %v", tmpl.Subject.CommonName, err)
		}
		if _, s, ok := certSignature(cert); ok && s.Cmp(new(big.Int).Rsh(parentKey.Curve.Params().N, 1)) <= 0 {
			return cert, der
		}
	}
	tb.Fatalf("msptest: no low-S signature for %s", tmpl.Subject.CommonName)
	return nil, nil
}

func certSignature(cert *x509.Certificate) (*big.Int, *big.Int, bool) {
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(cert.Signature, &sig); err != nil || sig.R == nil || sig.S == nil {
		return nil, nil, false
	}
	return sig.R, sig.S, true
}

// HighSCertPEM returns cert re-encoded with the high-S form (r, n-s) of its issuer's
// signature: the same certificate for Fabric, different bytes. issuer is the CA that
// signed cert.
func HighSCertPEM(tb testing.TB, cert *x509.Certificate, issuer *CA) []byte {
	tb.Helper()
	r, s, ok := certSignature(cert)
	if !ok {
		tb.Fatalf("msptest: certificate signature is not ECDSA")
	}
	n := issuer.Key.Curve.Params().N
	if s.Cmp(new(big.Int).Rsh(n, 1)) <= 0 {
		s = new(big.Int).Sub(n, s)
	}
	var outer struct {
		TBS       asn1.RawValue
		Algorithm asn1.RawValue
		Signature asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.Raw, &outer); err != nil {
		tb.Fatalf("msptest: re-reading certificate: %v", err)
	}
	sig := derSignature(r, s)
	outer.Signature = asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}
	der, err := asn1.Marshal(outer)
	if err != nil {
		tb.Fatalf("msptest: re-encoding certificate: %v", err)
	}
	return pemCert(der)
}

// AsCA turns an identity issued with CertOptions{IsCA: true} into a CA.
func (id *Identity) AsCA() *CA {
	return &CA{Cert: id.Cert, CertPEM: id.CertPEM, Key: id.Key}
}

// Issue makes a certificate for commonName signed by ca. The identity's MSPID is empty;
// set it (NewOrg does) or use SerializeAs.
func (ca *CA) Issue(tb testing.TB, commonName string, opts CertOptions) *Identity {
	tb.Helper()
	curve := opts.Curve
	if curve == nil {
		curve = elliptic.P256()
	}
	key := newKey(tb, curve)
	tmpl := opts.Template
	if tmpl == nil {
		tmpl = &x509.Certificate{KeyUsage: x509.KeyUsageDigitalSignature}
	}
	tmpl.SerialNumber = serial(tb)
	tmpl.Subject.CommonName = commonName
	tmpl.Subject.OrganizationalUnit = opts.OUs
	tmpl.NotBefore, tmpl.NotAfter = opts.NotBefore, opts.NotAfter
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour).Truncate(time.Second)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(365 * 24 * time.Hour).Truncate(time.Second)
	}
	tmpl.BasicConstraintsValid = true
	tmpl.IsCA = opts.IsCA
	if opts.IsCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	tmpl.ExtKeyUsage = opts.ExtKeyUsage
	tmpl.DNSNames = opts.DNSNames
	tmpl.SubjectKeyId = ski(&key.PublicKey)
	cert, der := create(tb, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	return &Identity{Cert: cert, CertPEM: pemCert(der), Key: key}
}

// CRL returns a PEM CRL of ca revoking the given certificates.
func (ca *CA) CRL(tb testing.TB, revoked ...*Identity) []byte {
	tb.Helper()
	now := time.Now()
	var entries []x509.RevocationListEntry
	for _, id := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: id.Cert.SerialNumber, RevocationTime: now.Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(1),
		ThisUpdate:                now.Add(-time.Hour),
		NextUpdate:                now.Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.Key)
	if err != nil {
		tb.Fatalf("msptest: creating CRL: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// Serialize returns the marshalled SerializedIdentity{MSPID, CertPEM}.
func (id *Identity) Serialize() []byte { return id.SerializeAs(id.MSPID) }

// SerializeAs serializes the certificate under another MSP ID.
func (id *Identity) SerializeAs(mspID string) []byte {
	return Serialized(mspID, id.CertPEM)
}

// Serialized marshals a SerializedIdentity.
func Serialized(mspID string, idBytes []byte) []byte {
	b, err := proto.Marshal(&mspproto.SerializedIdentity{Mspid: mspID, IdBytes: idBytes})
	if err != nil {
		// Marshalling two scalar fields cannot fail.
		return nil
	}
	return b
}

// Sign signs SHA-256(msg) with a low S, as Fabric does. It returns nil only if the system
// random source fails.
func (id *Identity) Sign(msg []byte) []byte {
	r, s, ok := id.sign(msg)
	if !ok {
		return nil
	}
	n := id.Key.Curve.Params().N
	if s.Cmp(new(big.Int).Rsh(n, 1)) > 0 {
		s.Sub(n, s)
	}
	return derSignature(r, s)
}

// SignHighS signs msg with the high-S form of a valid signature, which Fabric refuses.
func (id *Identity) SignHighS(msg []byte) []byte {
	r, s, ok := id.sign(msg)
	if !ok {
		return nil
	}
	n := id.Key.Curve.Params().N
	if s.Cmp(new(big.Int).Rsh(n, 1)) <= 0 {
		s.Sub(n, s)
	}
	return derSignature(r, s)
}

func (id *Identity) sign(msg []byte) (*big.Int, *big.Int, bool) {
	digest := sha256.Sum256(msg)
	der, err := ecdsa.SignASN1(rand.Reader, id.Key, digest[:])
	if err != nil {
		return nil, nil, false
	}
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil, nil, false
	}
	return sig.R, sig.S, true
}

func derSignature(r, s *big.Int) []byte {
	b, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		return nil
	}
	return b
}

// Org is an organization: a root CA, the CA that issues its identities (the root, or an
// intermediate), a TLS root CA and one identity of each kind.
type Org struct {
	MSPID   string
	Root    *CA
	CA      *CA // the issuing CA: Root, or an intermediate issued by Root
	TLSRoot *CA

	Client, Peer, Admin, Orderer *Identity // each with its node OU
	Member                       *Identity // no OU: a member only for MSPs without NodeOUs
	Expired                      *Identity // client OU, expired yesterday
	Revoked                      *Identity // client OU, revoked by CRL
	CRL                          []byte    // the issuing CA's PEM CRL revoking Revoked
}

// NewOrg makes an organization whose identities are issued by its root CA.
func NewOrg(tb testing.TB, mspID string) *Org {
	tb.Helper()
	root := NewRootCA(tb, "ca."+mspID)
	return newOrg(tb, mspID, root, root)
}

// NewOrgWithIntermediate makes an organization whose identities are issued by an
// intermediate CA of its root.
func NewOrgWithIntermediate(tb testing.TB, mspID string) *Org {
	tb.Helper()
	root := NewRootCA(tb, "ca."+mspID)
	return newOrg(tb, mspID, root, root.NewIntermediateCA(tb, "ica."+mspID))
}

func newOrg(tb testing.TB, mspID string, root, ca *CA) *Org {
	tb.Helper()
	o := &Org{MSPID: mspID, Root: root, CA: ca, TLSRoot: NewRootCA(tb, "tlsca."+mspID)}
	issue := func(cn string, opts CertOptions) *Identity {
		id := ca.Issue(tb, cn+"@"+mspID, opts)
		id.MSPID = mspID
		return id
	}
	o.Client = issue("client", CertOptions{OUs: []string{OUClient}})
	o.Peer = issue("peer", CertOptions{OUs: []string{OUPeer}})
	o.Admin = issue("admin", CertOptions{OUs: []string{OUAdmin}})
	o.Orderer = issue("orderer", CertOptions{OUs: []string{OUOrderer}})
	o.Member = issue("member", CertOptions{})
	o.Expired = issue("expired", CertOptions{
		OUs:       []string{OUClient},
		NotBefore: time.Now().Add(-10 * 24 * time.Hour).Truncate(time.Second),
		NotAfter:  time.Now().Add(-24 * time.Hour).Truncate(time.Second),
	})
	o.Revoked = issue("revoked", CertOptions{OUs: []string{OUClient}})
	o.CRL = ca.CRL(tb, o.Revoked)
	return o
}

// Issue makes another identity of the organization, issued by its CA.
func (o *Org) Issue(tb testing.TB, commonName string, opts CertOptions) *Identity {
	tb.Helper()
	id := o.CA.Issue(tb, commonName, opts)
	id.MSPID = o.MSPID
	return id
}

// FabricConfig returns the organization's MSP configuration: root (and intermediate)
// CA, TLS root, the CRL and SHA2/SHA256 crypto config. With nodeOUs the four node OUs are
// enabled (not bound to a CA) and there are no explicit admins, as cryptogen writes it;
// without, Admin is the explicit admin. Tests may modify the result before Wrap.
func (o *Org) FabricConfig(nodeOUs bool) *mspproto.FabricMSPConfig {
	fc := &mspproto.FabricMSPConfig{
		Name:           o.MSPID,
		RootCerts:      [][]byte{o.Root.CertPEM},
		RevocationList: [][]byte{o.CRL},
		TlsRootCerts:   [][]byte{o.TLSRoot.CertPEM},
		CryptoConfig:   &mspproto.FabricCryptoConfig{SignatureHashFamily: "SHA2", IdentityIdentifierHashFunction: "SHA256"},
	}
	if o.CA != o.Root {
		fc.IntermediateCerts = [][]byte{o.CA.CertPEM}
	}
	if !nodeOUs {
		fc.Admins = [][]byte{o.Admin.CertPEM}
		return fc
	}
	fc.FabricNodeOus = &mspproto.FabricNodeOUs{
		Enable:              true,
		ClientOuIdentifier:  &mspproto.FabricOUIdentifier{OrganizationalUnitIdentifier: OUClient},
		PeerOuIdentifier:    &mspproto.FabricOUIdentifier{OrganizationalUnitIdentifier: OUPeer},
		AdminOuIdentifier:   &mspproto.FabricOUIdentifier{OrganizationalUnitIdentifier: OUAdmin},
		OrdererOuIdentifier: &mspproto.FabricOUIdentifier{OrganizationalUnitIdentifier: OUOrderer},
	}
	return fc
}

// MSPConfig is Wrap(o.FabricConfig(nodeOUs)).
func (o *Org) MSPConfig(nodeOUs bool) *mspproto.MSPConfig { return Wrap(o.FabricConfig(nodeOUs)) }

// Wrap marshals a FabricMSPConfig into an MSPConfig of type FABRIC.
func Wrap(fc *mspproto.FabricMSPConfig) *mspproto.MSPConfig {
	b, err := proto.Marshal(fc)
	if err != nil {
		return nil
	}
	return &mspproto.MSPConfig{Type: 0, Config: b}
}

// OrgGroup returns an organization config group carrying conf as its MSP value, ready to
// be placed under Channel/Orderer, Channel/Application or a consortium.
func OrgGroup(conf *mspproto.MSPConfig) *cb.ConfigGroup {
	b, err := proto.Marshal(conf)
	if err != nil {
		return nil
	}
	return &cb.ConfigGroup{
		Groups:   map[string]*cb.ConfigGroup{},
		Values:   map[string]*cb.ConfigValue{"MSP": {Value: b}},
		Policies: map[string]*cb.ConfigPolicy{},
	}
}

// RolePrincipal is a ROLE principal.
func RolePrincipal(mspID string, role mspproto.MSPRole_MSPRoleType) *mspproto.MSPPrincipal {
	return principal(mspproto.MSPPrincipal_ROLE, &mspproto.MSPRole{MspIdentifier: mspID, Role: role})
}

// OUPrincipal is an ORGANIZATION_UNIT principal; certifiers is the hash of the issuing
// chain (see Certifiers).
func OUPrincipal(mspID, ou string, certifiers []byte) *mspproto.MSPPrincipal {
	return principal(mspproto.MSPPrincipal_ORGANIZATION_UNIT, &mspproto.OrganizationUnit{
		MspIdentifier: mspID, OrganizationalUnitIdentifier: ou, CertifiersIdentifier: certifiers,
	})
}

// IdentityPrincipal is an IDENTITY principal naming id.
func IdentityPrincipal(id *Identity) *mspproto.MSPPrincipal {
	return &mspproto.MSPPrincipal{PrincipalClassification: mspproto.MSPPrincipal_IDENTITY, Principal: id.Serialize()}
}

// AnonymityPrincipal is an ANONYMITY principal.
func AnonymityPrincipal(t mspproto.MSPIdentityAnonymity_MSPIdentityAnonymityType) *mspproto.MSPPrincipal {
	return principal(mspproto.MSPPrincipal_ANONYMITY, &mspproto.MSPIdentityAnonymity{AnonymityType: t})
}

// CombinedPrincipal is a COMBINED principal of all of ps.
func CombinedPrincipal(ps ...*mspproto.MSPPrincipal) *mspproto.MSPPrincipal {
	return principal(mspproto.MSPPrincipal_COMBINED, &mspproto.CombinedPrincipal{Principals: ps})
}

func principal(c mspproto.MSPPrincipal_Classification, m proto.Message) *mspproto.MSPPrincipal {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil
	}
	return &mspproto.MSPPrincipal{PrincipalClassification: c, Principal: b}
}

// Certifiers returns the certifiers identifier of identities issued by chain[0] (the
// issuing CA first, its root last) for an MSP hashing with SHA-256: the hash of the CAs'
// DER (msptest CAs have low-S signatures, so their DER is what Fabric hashes).
func Certifiers(chain ...*x509.Certificate) []byte {
	h := sha256.New()
	for _, c := range chain {
		h.Write(c.Raw)
	}
	return h.Sum(nil)
}

func newKey(tb testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		tb.Fatalf("msptest: generating key: %v", err)
	}
	return k
}

func serial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		tb.Fatalf("msptest: serial: %v", err)
	}
	return n.Add(n, big.NewInt(1))
}

func ski(pub *ecdsa.PublicKey) []byte {
	b, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(b)
	return sum[:20]
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// WriteMSPDir writes the organization's verifying MSP directory as Fabric lays it out, the
// input of configtxgen and orderer/genesis: cacerts (the root), intermediatecerts (the
// issuing CA, when it is an intermediate), crls (the CRL revoking Revoked) and tlscacerts.
// With nodeOUs, config.yaml enables the four node OUs, each bound to the issuing CA as
// cryptogen and Fabric CA users write it; without, admincerts holds Admin.
func (o *Org) WriteMSPDir(tb testing.TB, dir string, nodeOUs bool) {
	tb.Helper()
	files := map[string][]byte{
		"cacerts/ca.pem":       o.Root.CertPEM,
		"crls/crl.pem":         o.CRL,
		"tlscacerts/tlsca.pem": o.TLSRoot.CertPEM,
	}
	issuer := "cacerts/ca.pem"
	if o.CA != o.Root {
		issuer = "intermediatecerts/ica.pem"
		files[issuer] = o.CA.CertPEM
	}
	if nodeOUs {
		var b strings.Builder
		b.WriteString("NodeOUs:\n  Enable: true\n")
		for _, e := range [][2]string{
			{"ClientOUIdentifier", OUClient}, {"PeerOUIdentifier", OUPeer},
			{"AdminOUIdentifier", OUAdmin}, {"OrdererOUIdentifier", OUOrderer},
		} {
			fmt.Fprintf(&b, "  %s:\n    Certificate: %s\n    OrganizationalUnitIdentifier: %s\n", e[0], issuer, e[1])
		}
		files["config.yaml"] = []byte(b.String())
	} else {
		files["admincerts/admin.pem"] = o.Admin.CertPEM
	}
	for name, data := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			tb.Fatalf("msptest: %v", err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			tb.Fatalf("msptest: %v", err)
		}
	}
}
