package msp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"

	"github.com/golang/protobuf/proto"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
)

// MSP types of MSPConfig.Type.
const (
	TypeFabric = 0
	TypeIdemix = 1
)

// Crypto configuration names, as written in FabricCryptoConfig.
const (
	HashFamilySHA2 = "SHA2"
	HashFamilySHA3 = "SHA3"
	HashSHA256     = "SHA256"
	HashSHA384     = "SHA384"
	HashSHA3_256   = "SHA3_256"
	HashSHA3_384   = "SHA3_384"
)

// principalCacheSize bounds the IDENTITY principals an MSP keeps parsed; policies name
// few identities explicitly.
const principalCacheSize = 64

// MSP is one organization's X.509 membership service provider, set up from the MSP value
// of a channel configuration (or a local MSP directory). It decides whether a certificate
// is a valid member, which node role it has and whether it satisfies an MSP principal.
// An MSP is immutable once built and safe for concurrent use.
type MSP struct {
	id      string
	version Version
	config  *mspproto.MSPConfig

	// unsupported is set for MSP types kord accepts in a configuration but cannot verify
	// identities of (idemix): the channel stays usable, those identities never count.
	unsupported string

	roots, intermediates       []*x509.Certificate // low-S normalised
	rootPool, intermediatePool *x509.CertPool
	internal                   map[string]bool // DER of CAs that issued an intermediate of this MSP
	admins                     []*X509Identity
	crls                       []revocationList
	ous                        map[string][][]byte // OU name -> accepted certifier identifiers
	nodeOUs                    bool
	clientOU, peerOU           *ouIdentifier
	adminOU, ordererOU         *ouIdentifier
	sigHashFamily              string
	idHash                     func() hash.Hash
	tlsRoots, tlsIntermediates [][]byte
	principals                 *idCache
}

// ouIdentifier is an OU name as issued by a particular CA chain (certifiers: the hash of
// the issuing chain, empty when any chain of the MSP will do).
type ouIdentifier struct {
	name       string
	certifiers []byte
}

type revocationList struct {
	list   *x509.RevocationList
	hasAKI bool
}

// New sets up an MSP with the rules of LatestVersion.
func New(conf *mspproto.MSPConfig) (*MSP, error) {
	return NewVersion(conf, LatestVersion)
}

// NewVersion sets up an MSP from an MSPConfig (Type FABRIC, Config a marshalled
// FabricMSPConfig) with the rules of version v. Errors name the MSP and the part of the
// configuration at fault.
func NewVersion(conf *mspproto.MSPConfig, v Version) (*MSP, error) {
	if conf == nil {
		return nil, errors.New("MSP config is nil")
	}
	if v < V1_0 || v > V1_4_3 {
		return nil, fmt.Errorf("unknown MSP version %v", v)
	}
	switch conf.Type {
	case TypeFabric:
	case TypeIdemix:
		var ic mspproto.IdemixMSPConfig
		if err := proto.Unmarshal(conf.Config, &ic); err != nil {
			return nil, fmt.Errorf("idemix MSP config does not parse: %w", err)
		}
		if ic.Name == "" {
			return nil, errors.New("idemix MSP config has an empty MSP ID")
		}
		return &MSP{id: ic.Name, version: v, config: conf, unsupported: "idemix"}, nil
	default:
		return nil, fmt.Errorf("unsupported MSP type %d", conf.Type)
	}
	var fc mspproto.FabricMSPConfig
	if err := proto.Unmarshal(conf.Config, &fc); err != nil {
		return nil, fmt.Errorf("MSP config is not a FabricMSPConfig: %w", err)
	}
	if fc.Name == "" {
		return nil, errors.New("MSP config has an empty MSP ID")
	}
	m := &MSP{id: fc.Name, version: v, config: conf, principals: newIDCache(principalCacheSize)}
	if err := m.setup(&fc); err != nil {
		return nil, fmt.Errorf("MSP %s: %w", fc.Name, err)
	}
	return m, nil
}

// setup follows the order of Fabric's setup for the version, which decides which error is
// reported first when several parts are wrong.
func (m *MSP) setup(fc *mspproto.FabricMSPConfig) error {
	if err := m.setupCrypto(fc.CryptoConfig); err != nil {
		return err
	}
	if err := m.setupCAs(fc); err != nil {
		return err
	}
	if m.version < V1_4_3 {
		if err := m.setupAdmins(fc); err != nil {
			return err
		}
	}
	if err := m.setupCRLs(fc); err != nil {
		return err
	}
	if err := m.finalizeCAs(); err != nil {
		return err
	}
	// A SigningIdentity in a channel's MSP is ignored: channel MSPs only verify, and the
	// local signing identity is loaded by LoadSigner.
	if err := m.setupTLSCAs(fc); err != nil {
		return err
	}
	if err := m.setupOUs(fc); err != nil {
		return err
	}
	switch m.version {
	case V1_0:
		// NodeOUs did not exist yet: the configuration's NodeOUs are ignored.
	case V1_1, V1_3:
		if err := m.setupNodeOUsV11(fc.FabricNodeOus); err != nil {
			return err
		}
	default:
		if err := m.setupNodeOUs(fc.FabricNodeOus); err != nil {
			return err
		}
		if err := m.setupAdmins(fc); err != nil {
			return err
		}
		if len(m.admins) == 0 && (!m.nodeOUs || m.adminOU == nil) {
			return errors.New("no admin certificates and no admin OU: administrators must be declared one way or the other")
		}
	}
	return m.checkAdmins()
}

func (m *MSP) setupCrypto(cc *mspproto.FabricCryptoConfig) error {
	m.sigHashFamily = HashFamilySHA2
	idHash := HashSHA256
	if cc != nil {
		if cc.SignatureHashFamily != "" {
			// An unknown family is accepted here and fails every Verify, as in Fabric: a
			// configuration Fabric accepts must not be refused.
			m.sigHashFamily = cc.SignatureHashFamily
		}
		if cc.IdentityIdentifierHashFunction != "" {
			idHash = cc.IdentityIdentifierHashFunction
		}
	}
	switch idHash {
	case HashSHA256:
		m.idHash = sha256.New
	case HashSHA384:
		m.idHash = sha512.New384
	case HashSHA3_256:
		m.idHash = func() hash.Hash { return sha3.New256() }
	case HashSHA3_384:
		m.idHash = func() hash.Hash { return sha3.New384() }
	default:
		return fmt.Errorf("crypto config: unknown identity identifier hash function %q", idHash)
	}
	return nil
}

func (m *MSP) setupCAs(fc *mspproto.FabricMSPConfig) error {
	if len(fc.RootCerts) == 0 {
		return errors.New("no root CA certificate")
	}
	parse := func(kind string, pems [][]byte) ([]*x509.Certificate, error) {
		certs := make([]*x509.Certificate, len(pems))
		for i, p := range pems {
			c, err := parsePEMCert(p)
			if err != nil {
				return nil, fmt.Errorf("%s cert %d: %w", kind, i, err)
			}
			if err := checkKeyType(c); err != nil {
				return nil, fmt.Errorf("%s cert %d (%s): %w", kind, i, certName(c), err)
			}
			certs[i] = c
		}
		return certs, nil
	}
	roots, err := parse("root", fc.RootCerts)
	if err != nil {
		return err
	}
	intermediates, err := parse("intermediate", fc.IntermediateCerts)
	if err != nil {
		return err
	}
	// Normalise against the pools as given, then rebuild the pools from the normalised
	// certificates so that chains (and certifier hashes) are made of canonical bytes.
	m.rootPool, m.intermediatePool = newPool(roots), newPool(intermediates)
	for i, c := range roots {
		if roots[i], _, err = m.normalize(c); err != nil {
			return fmt.Errorf("root cert %d (%s): %w", i, certName(c), err)
		}
	}
	for i, c := range intermediates {
		if intermediates[i], _, err = m.normalize(c); err != nil {
			return fmt.Errorf("intermediate cert %d (%s) does not chain to a root: %w", i, certName(c), err)
		}
	}
	m.roots, m.intermediates = roots, intermediates
	m.rootPool, m.intermediatePool = newPool(roots), newPool(intermediates)
	return nil
}

func newPool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// checkKeyType accepts the public keys Fabric's MSP imports: ECDSA, and RSA (which Fabric
// keeps for RSA CAs; an RSA identity can be validated but never verifies a signature).
func checkKeyType(c *x509.Certificate) error {
	switch c.PublicKey.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey:
		return nil
	}
	return fmt.Errorf("unsupported public key type %T; an MSP accepts ECDSA and RSA keys", c.PublicKey)
}

func (m *MSP) setupAdmins(fc *mspproto.FabricMSPConfig) error {
	m.admins = make([]*X509Identity, 0, len(fc.Admins))
	for i, p := range fc.Admins {
		c, err := parsePEMCert(p)
		if err != nil {
			return fmt.Errorf("admin cert %d: %w", i, err)
		}
		id, err := m.newIdentity(c)
		if err != nil {
			return fmt.Errorf("admin cert %d (%s): %w", i, certName(c), err)
		}
		m.admins = append(m.admins, id)
	}
	return nil
}

// parseCRL accepts DER or PEM: configtxgen copies the PEM files of an MSP's crls folder
// into the configuration, and Fabric's parser unwraps PEM whose first line is the CRL
// header.
func parseCRL(b []byte) (*x509.RevocationList, error) {
	if bytes.HasPrefix(b, []byte("-----BEGIN X509 CRL")) {
		if block, _ := pem.Decode(b); block != nil && block.Type == "X509 CRL" {
			b = block.Bytes
		}
	}
	return x509.ParseRevocationList(b)
}

func (m *MSP) setupCRLs(fc *mspproto.FabricMSPConfig) error {
	for i, b := range fc.RevocationList {
		l, err := parseCRL(b)
		if err != nil {
			return fmt.Errorf("revocation list %d: %w", i, err)
		}
		m.crls = append(m.crls, revocationList{list: l, hasAKI: hasExtension(l.Extensions, oidAuthorityKeyID)})
	}
	return nil
}

// finalizeCAs checks that every CA is a CA with a subject key identifier (CRLs are matched
// by it), chains within the MSP and is not revoked, then marks the CAs that issued an
// intermediate: identities must be issued by a CA at the bottom of the tree.
func (m *MSP) finalizeCAs() error {
	check := func(kind string, i int, c *x509.Certificate) error {
		if !c.IsCA {
			return fmt.Errorf("%s cert %d (%s) is not a CA certificate", kind, i, certName(c))
		}
		if !hasExtension(c.Extensions, oidSubjectKeyID) {
			return fmt.Errorf("%s cert %d (%s) has no subject key identifier", kind, i, certName(c))
		}
		chain, err := uniqueChain(c, chainOptions(m.rootPool, m.intermediatePool, c))
		if err != nil {
			if kind == "intermediate" {
				return fmt.Errorf("intermediate cert %d (%s) does not chain to a root: %w", i, certName(c), err)
			}
			return fmt.Errorf("%s cert %d (%s) is not valid: %w", kind, i, certName(c), err)
		}
		if len(chain) > 1 {
			if err := m.checkRevocation(c, chain); err != nil {
				return fmt.Errorf("%s cert %d (%s): %w", kind, i, certName(c), err)
			}
		}
		return nil
	}
	for i, c := range m.roots {
		if err := check("root", i, c); err != nil {
			return err
		}
	}
	for i, c := range m.intermediates {
		if err := check("intermediate", i, c); err != nil {
			return err
		}
	}
	m.internal = make(map[string]bool)
	for _, c := range m.intermediates {
		chain, err := uniqueChain(c, chainOptions(m.rootPool, m.intermediatePool, c))
		if err != nil {
			return fmt.Errorf("intermediate cert %s does not chain to a root: %w", certName(c), err)
		}
		for _, parent := range chain[1:] {
			m.internal[string(parent.Raw)] = true
		}
	}
	return nil
}

// setupTLSCAs keeps the TLS CAs (for other components' TLS checks) after checking them as
// Fabric does: CAs with a subject key identifier, chaining within the TLS CAs, not revoked
// by the MSP's CRLs.
func (m *MSP) setupTLSCAs(fc *mspproto.FabricMSPConfig) error {
	var roots, intermediates []*x509.Certificate
	for i, p := range fc.TlsRootCerts {
		c, err := parsePEMCert(p)
		if err != nil {
			return fmt.Errorf("TLS root cert %d: %w", i, err)
		}
		roots = append(roots, c)
	}
	for i, p := range fc.TlsIntermediateCerts {
		c, err := parsePEMCert(p)
		if err != nil {
			return fmt.Errorf("TLS intermediate cert %d: %w", i, err)
		}
		intermediates = append(intermediates, c)
	}
	rootPool, intermediatePool := newPool(roots), newPool(intermediates)
	for i, c := range append(append([]*x509.Certificate{}, roots...), intermediates...) {
		kind, idx := "TLS root", i
		if i >= len(roots) {
			kind, idx = "TLS intermediate", i-len(roots)
		}
		if !c.IsCA {
			return fmt.Errorf("%s cert %d (%s) is not a CA certificate", kind, idx, certName(c))
		}
		if !hasExtension(c.Extensions, oidSubjectKeyID) {
			return fmt.Errorf("%s cert %d (%s) has no subject key identifier", kind, idx, certName(c))
		}
		chain, err := uniqueChain(c, chainOptions(rootPool, intermediatePool, c))
		if err != nil {
			return fmt.Errorf("%s cert %d (%s) is not valid: %w", kind, idx, certName(c), err)
		}
		if len(chain) > 1 {
			if err := m.checkRevocation(c, chain); err != nil {
				return fmt.Errorf("%s cert %d (%s): %w", kind, idx, certName(c), err)
			}
		}
	}
	m.tlsRoots, m.tlsIntermediates = fc.TlsRootCerts, fc.TlsIntermediateCerts
	return nil
}

func (m *MSP) setupOUs(fc *mspproto.FabricMSPConfig) error {
	m.ous = make(map[string][][]byte)
	for i, ou := range fc.OrganizationalUnitIdentifiers {
		if ou == nil {
			return fmt.Errorf("organizational unit identifier %d is empty", i)
		}
		certifiers, err := m.certifiersOf(ou.Certificate)
		if err != nil {
			return fmt.Errorf("organizational unit identifier %d (%q): %w", i, ou.OrganizationalUnitIdentifier, err)
		}
		known := false
		for _, c := range m.ous[ou.OrganizationalUnitIdentifier] {
			known = known || bytes.Equal(c, certifiers)
		}
		if !known {
			m.ous[ou.OrganizationalUnitIdentifier] = append(m.ous[ou.OrganizationalUnitIdentifier], certifiers)
		}
	}
	return nil
}

// certifiersOf returns the certifier identifier of a CA of this MSP: the hash of its chain
// from itself up to its root. Identities issued by that CA carry the same value.
func (m *MSP) certifiersOf(certPEM []byte) ([]byte, error) {
	c, err := parsePEMCert(certPEM)
	if err != nil {
		return nil, err
	}
	c, _, err = m.normalize(c)
	if err != nil {
		return nil, err
	}
	for _, r := range m.roots {
		if r.Equal(c) {
			return m.hashChain([]*x509.Certificate{c}), nil
		}
	}
	for _, in := range m.intermediates {
		if !in.Equal(c) {
			continue
		}
		chain, err := uniqueChain(c, chainOptions(m.rootPool, m.intermediatePool, c))
		if err != nil {
			return nil, err
		}
		if len(chain) < 2 {
			return nil, fmt.Errorf("intermediate %s has a chain of length %d", certName(c), len(chain))
		}
		if m.internal[string(c.Raw)] {
			return nil, fmt.Errorf("%s issued another intermediate CA; only a CA at the bottom of the certification tree can certify an OU", certName(c))
		}
		return m.hashChain(chain), nil
	}
	return nil, fmt.Errorf("certificate %s is not one of the MSP's root or intermediate CAs", certName(c))
}

func (m *MSP) hashChain(chain []*x509.Certificate) []byte {
	h := m.idHash()
	for _, c := range chain {
		h.Write(c.Raw)
	}
	return h.Sum(nil)
}

func (m *MSP) nodeOU(kind string, f *mspproto.FabricOUIdentifier) (*ouIdentifier, error) {
	ou := &ouIdentifier{name: f.OrganizationalUnitIdentifier}
	if len(f.Certificate) != 0 {
		c, err := m.certifiersOf(f.Certificate)
		if err != nil {
			return nil, fmt.Errorf("NodeOUs: %s OU certificate: %w", kind, err)
		}
		ou.certifiers = c
	}
	return ou, nil
}

// setupNodeOUsV11 is the v1.1/v1.3 NodeOU setup: client and peer OUs are both required
// whenever NodeOUs are present, enabled or not.
func (m *MSP) setupNodeOUsV11(n *mspproto.FabricNodeOUs) error {
	if n == nil {
		return nil
	}
	m.nodeOUs = n.Enable
	if n.ClientOuIdentifier == nil || n.ClientOuIdentifier.OrganizationalUnitIdentifier == "" {
		return errors.New("NodeOUs: the client OU identifier is missing")
	}
	if n.PeerOuIdentifier == nil || n.PeerOuIdentifier.OrganizationalUnitIdentifier == "" {
		return errors.New("NodeOUs: the peer OU identifier is missing")
	}
	var err error
	if m.clientOU, err = m.nodeOU("client", n.ClientOuIdentifier); err != nil {
		return err
	}
	m.peerOU, err = m.nodeOU("peer", n.PeerOuIdentifier)
	return err
}

// setupNodeOUs is the v1.4.3 NodeOU setup: any of the four OUs may be given; with none,
// classification is off even if enabled.
func (m *MSP) setupNodeOUs(n *mspproto.FabricNodeOUs) error {
	if n == nil {
		return nil
	}
	m.nodeOUs = n.Enable
	set := 0
	for _, e := range []struct {
		kind string
		f    *mspproto.FabricOUIdentifier
		into **ouIdentifier
	}{
		{"client", n.ClientOuIdentifier, &m.clientOU},
		{"peer", n.PeerOuIdentifier, &m.peerOU},
		{"admin", n.AdminOuIdentifier, &m.adminOU},
		{"orderer", n.OrdererOuIdentifier, &m.ordererOU},
	} {
		if e.f == nil {
			continue
		}
		ou, err := m.nodeOU(e.kind, e.f)
		if err != nil {
			return err
		}
		*e.into = ou
		set++
	}
	if set == 0 {
		m.nodeOUs = false
	}
	return nil
}

// checkAdmins makes sure explicit admins are members, so that recognising an admin later
// is a plain certificate comparison.
func (m *MSP) checkAdmins() error {
	for i, a := range m.admins {
		switch {
		case !m.nodeOUs:
			if err := a.Validate(); err != nil {
				return fmt.Errorf("admin cert %d is not a valid member: %w", i, err)
			}
		case m.version < V1_4_3:
			if err := a.Validate(); err != nil {
				return fmt.Errorf("admin cert %d is not a valid member: %w", i, err)
			}
			if err := m.hasNodeOU(a, mspproto.MSPRole_CLIENT); err != nil {
				return fmt.Errorf("admin cert %d must be a client: %w", i, err)
			}
		default:
			errClient := m.hasNodeOU(a, mspproto.MSPRole_CLIENT)
			errAdmin := m.hasNodeOU(a, mspproto.MSPRole_ADMIN)
			if errClient != nil && errAdmin != nil {
				return fmt.Errorf("admin cert %d must carry the client or the admin OU: %v; %v", i, errClient, errAdmin)
			}
		}
	}
	return nil
}

// ID returns the MSP identifier (FabricMSPConfig.Name).
func (m *MSP) ID() string { return m.id }

// Version returns the rules the MSP applies.
func (m *MSP) Version() Version { return m.version }

// Config returns the configuration the MSP was built from; it must not be modified.
func (m *MSP) Config() *mspproto.MSPConfig { return m.config }

// NodeOUs reports whether identities are classified by node OU.
func (m *MSP) NodeOUs() bool { return m.nodeOUs }

// TLSRootCerts returns the PEM TLS root CA certificates of the configuration.
func (m *MSP) TLSRootCerts() [][]byte { return m.tlsRoots }

// TLSIntermediateCerts returns the PEM TLS intermediate CA certificates.
func (m *MSP) TLSIntermediateCerts() [][]byte { return m.tlsIntermediates }
