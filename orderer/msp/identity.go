package msp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang/protobuf/proto"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"

	"github.com/kordhq/kord/orderer/policy"
)

// X509Identity is a certificate deserialized by an MSP. Validation runs once, on first
// use, and its outcome is kept; identities are shared through caches and are immutable
// otherwise.
type X509Identity struct {
	msp  *MSP
	cert *x509.Certificate // low-S normalised, as Fabric compares certificates
	key  string
	// chain is the chain found while normalising the certificate (leaf first); nil when
	// the certificate is not ECDSA-signed and so was not normalised.
	chain []*x509.Certificate

	once     sync.Once
	ous      []ouIdentifier // subject OUs with the certifiers of the identity's chain
	chainErr error          // why the identity has no usable chain (then ous is empty)
	err      error          // the outcome of Validate
}

var _ policy.Identity = (*X509Identity)(nil)

// normalize finds the chain of c within the MSP and returns c with a low-S signature
// (see lowSCertificate) together with that chain. A self-signed CA is normalised against
// itself. Fabric does this when it deserializes, so a certificate without a unique chain
// is not an identity at all, not merely an invalid one; certificates not signed with
// ECDSA are taken as they are.
func (m *MSP) normalize(c *x509.Certificate) (*x509.Certificate, []*x509.Certificate, error) {
	if !isECDSASigned(c) {
		return c, nil, nil
	}
	if c.IsCA && c.CheckSignatureFrom(c) == nil {
		n, err := lowSCertificate(c, c)
		if err != nil {
			return nil, nil, err
		}
		chain, err := uniqueChain(n, chainOptions(newPool([]*x509.Certificate{n}), m.intermediatePool, n))
		if err != nil {
			return nil, nil, err
		}
		return n, chain, nil
	}
	chain, err := uniqueChain(c, chainOptions(m.rootPool, m.intermediatePool, c))
	if err != nil {
		return nil, nil, err
	}
	if len(chain) < 2 {
		return nil, nil, errors.New("certificate is not self-signed but has no issuer in its chain")
	}
	n, err := lowSCertificate(c, chain[1])
	if err != nil {
		return nil, nil, err
	}
	return n, append([]*x509.Certificate{n}, chain[1:]...), nil
}

func (m *MSP) newIdentity(c *x509.Certificate) (*X509Identity, error) {
	if err := checkKeyType(c); err != nil {
		return nil, err
	}
	n, chain, err := m.normalize(c)
	if err != nil {
		return nil, fmt.Errorf("no valid chain to the CAs of MSP %s: %w", m.id, err)
	}
	h := m.idHash()
	h.Write(n.Raw)
	return &X509Identity{msp: m, cert: n, key: m.id + ":" + hex.EncodeToString(h.Sum(nil)), chain: chain}, nil
}

// DeserializeIdentity parses a marshalled SerializedIdentity of this MSP: its MSP ID must
// be this MSP's and its IdBytes a PEM certificate with an ECDSA (or RSA) key that chains
// to the MSP's CAs. The identity is not validated yet; see X509Identity.Validate.
func (m *MSP) DeserializeIdentity(serialized []byte) (policy.Identity, error) {
	id, err := m.deserialize(serialized)
	if err != nil {
		return nil, err
	}
	return id, nil
}

func (m *MSP) deserialize(serialized []byte) (*X509Identity, error) {
	if m == nil {
		return nil, errors.New("no MSP")
	}
	var sid mspproto.SerializedIdentity
	if err := proto.Unmarshal(serialized, &sid); err != nil {
		return nil, fmt.Errorf("MSP %s: not a serialized identity: %w", m.id, err)
	}
	if sid.Mspid != m.id {
		return nil, fmt.Errorf("identity of MSP %q presented to MSP %s", sid.Mspid, m.id)
	}
	return m.identityFromBytes(sid.IdBytes)
}

func (m *MSP) identityFromBytes(idBytes []byte) (*X509Identity, error) {
	if m.unsupported != "" {
		return nil, fmt.Errorf("MSP %s is an %s MSP; kord does not verify its identities", m.id, m.unsupported)
	}
	c, err := parsePEMCert(idBytes)
	if err != nil {
		return nil, fmt.Errorf("identity of MSP %s: %w", m.id, err)
	}
	id, err := m.newIdentity(c)
	if err != nil {
		return nil, fmt.Errorf("identity %s of MSP %s: %w", certName(c), m.id, err)
	}
	return id, nil
}

// MSPID implements policy.Identity.
func (id *X509Identity) MSPID() string { return id.msp.id }

// Key implements policy.Identity: the MSP ID and the hash (the MSP's identity hash
// function) of the normalised certificate, Fabric's identity identifier. Two encodings of
// one certificate that differ only in the form of the CA's signature share a key.
func (id *X509Identity) Key() string { return id.key }

// ExpiresAt implements policy.Identity.
func (id *X509Identity) ExpiresAt() time.Time { return id.cert.NotAfter }

// Certificate returns the identity's certificate (normalised to a low-S CA signature).
func (id *X509Identity) Certificate() *x509.Certificate { return id.cert }

// String names the identity for logs and errors: "Org1MSP/CN=User1@org1.example.com".
func (id *X509Identity) String() string {
	return id.msp.id + "/CN=" + id.cert.Subject.CommonName
}

// Validate implements policy.Identity with Fabric's MSP rules: the certificate is not a
// CA, has a unique chain to a root through the MSP's intermediates, built as of its own
// NotBefore (so expiry is not checked here; the orderer checks it separately), is issued
// by a CA at the bottom of the certification tree, is not revoked by a CRL of its issuer,
// carries an accepted OU when OU identifiers are configured, and exactly one node OU
// (client/peer, plus admin/orderer from v1.4.3) when NodeOUs are enabled.
func (id *X509Identity) Validate() error {
	id.validate()
	return id.err
}

func (id *X509Identity) validate() {
	id.once.Do(func() {
		m := id.msp
		chain, err := m.validationChain(id)
		if err != nil {
			id.chainErr = err
			id.err = fmt.Errorf("identity %s is not valid: %w", id, err)
			return
		}
		certifiers := m.hashChain(chain[1:])
		for _, ou := range id.cert.Subject.OrganizationalUnit {
			id.ous = append(id.ous, ouIdentifier{name: ou, certifiers: certifiers})
		}
		if err := m.checkRevocation(id.cert, chain); err != nil {
			id.err = fmt.Errorf("identity %s is not valid: %w", id, err)
			return
		}
		if err := m.checkOUs(id.ous); err != nil {
			id.err = fmt.Errorf("identity %s is not valid: %w", id, err)
		}
	})
}

func (m *MSP) validationChain(id *X509Identity) ([]*x509.Certificate, error) {
	if id.cert.IsCA {
		return nil, errors.New("it is a CA certificate; a CA cannot be used as an identity")
	}
	chain := id.chain
	if chain == nil {
		var err error
		if chain, err = uniqueChain(id.cert, chainOptions(m.rootPool, m.intermediatePool, id.cert)); err != nil {
			return nil, fmt.Errorf("no valid chain to the CAs of MSP %s: %w", m.id, err)
		}
	}
	if len(chain) < 2 {
		return nil, fmt.Errorf("chain of length %d; an identity needs an issuer", len(chain))
	}
	if m.internal[string(chain[1].Raw)] {
		return nil, fmt.Errorf("issued by %s, which issued intermediate CAs of MSP %s; identities must be issued by a CA at the bottom of the certification tree", certName(chain[1]), m.id)
	}
	return chain, nil
}

// checkRevocation looks for c in the CRLs whose authority key identifier is the subject
// key identifier of c's issuer, and believes a list only if that issuer signed it.
// Revocation takes effect as soon as the configuration holds the list, whatever the
// revocation date says.
func (m *MSP) checkRevocation(c *x509.Certificate, chain []*x509.Certificate) error {
	issuer := chain[1]
	if !hasExtension(issuer.Extensions, oidSubjectKeyID) {
		return fmt.Errorf("issuer %s has no subject key identifier", certName(issuer))
	}
	for i, rl := range m.crls {
		if !rl.hasAKI {
			// Fabric refuses to validate anything while such a list is configured.
			return fmt.Errorf("revocation list %d of MSP %s has no authority key identifier", i, m.id)
		}
		if !bytes.Equal(rl.list.AuthorityKeyId, issuer.SubjectKeyId) {
			continue
		}
		for _, e := range rl.list.RevokedCertificateEntries {
			if e.SerialNumber == nil || e.SerialNumber.Cmp(c.SerialNumber) != 0 {
				continue
			}
			// CheckSignature rather than RevocationList.CheckSignatureFrom: the latter
			// also demands the CRLSign key usage, which Fabric does not.
			if issuer.CheckSignature(rl.list.SignatureAlgorithm, rl.list.RawTBSRevocationList, rl.list.Signature) != nil {
				continue
			}
			return fmt.Errorf("certificate %s is revoked by revocation list %d of MSP %s", certName(c), i, m.id)
		}
	}
	return nil
}

func ouNames(ous []ouIdentifier) string {
	names := make([]string, len(ous))
	for i, ou := range ous {
		names[i] = ou.name
	}
	return "[" + strings.Join(names, ", ") + "]"
}

// nodeOUClasses maps OU names to the node OU they classify. Where two roles share a name
// the precedence is Fabric's: client before peer in v1.1/v1.3, the last of client, peer,
// admin, orderer in v1.4.3.
func (m *MSP) nodeOUClasses() (map[string]*ouIdentifier, string) {
	classes := make(map[string]*ouIdentifier)
	if m.version < V1_4_3 {
		classes[m.peerOU.name] = m.peerOU
		classes[m.clientOU.name] = m.clientOU
		return classes, "client or peer"
	}
	for _, ou := range []*ouIdentifier{m.clientOU, m.peerOU, m.adminOU, m.ordererOU} {
		if ou != nil {
			classes[ou.name] = ou
		}
	}
	return classes, "client, peer, admin or orderer"
}

func (m *MSP) checkOUs(ous []ouIdentifier) error {
	if len(m.ous) > 0 {
		found := false
		for _, ou := range ous {
			for _, c := range m.ous[ou.name] {
				found = found || bytes.Equal(c, ou.certifiers)
			}
		}
		if !found {
			if len(ous) == 0 {
				return fmt.Errorf("the certificate has no organizational unit (OU) and MSP %s requires one", m.id)
			}
			return fmt.Errorf("none of the certificate's organizational units %s is accepted by MSP %s", ouNames(ous), m.id)
		}
	}
	if !m.nodeOUs {
		return nil
	}
	classes, roles := m.nodeOUClasses()
	count := 0
	for _, ou := range ous {
		n := classes[ou.name]
		if n == nil {
			continue
		}
		if len(n.certifiers) != 0 && !bytes.Equal(n.certifiers, ou.certifiers) {
			return fmt.Errorf("the certificate's node OU %q is not issued by the CA that MSP %s binds it to", ou.name, m.id)
		}
		count++
		if count > 1 {
			break
		}
	}
	switch {
	case count == 0:
		return fmt.Errorf("the certificate has no %s node OU (its OUs: %s) and MSP %s classifies identities by NodeOUs", roles, ouNames(ous), m.id)
	case count > 1:
		return fmt.Errorf("the certificate has more than one node OU (its OUs: %s); MSP %s needs exactly one of %s", ouNames(ous), m.id, roles)
	}
	return nil
}

// hasNodeOU reports whether id carries the OU of role. Certifiers are not compared: that
// is part of validation, which callers run first where Fabric does.
func (m *MSP) hasNodeOU(id *X509Identity, role mspproto.MSPRole_MSPRoleType) error {
	if !m.nodeOUs {
		return fmt.Errorf("MSP %s does not enable NodeOUs, so it cannot tell a %s apart", m.id, roleName(role))
	}
	var n *ouIdentifier
	switch role {
	case mspproto.MSPRole_CLIENT:
		n = m.clientOU
	case mspproto.MSPRole_PEER:
		n = m.peerOU
	case mspproto.MSPRole_ADMIN:
		n = m.adminOU
	case mspproto.MSPRole_ORDERER:
		n = m.ordererOU
	default:
		return fmt.Errorf("role %s has no node OU", roleName(role))
	}
	if n == nil {
		return fmt.Errorf("MSP %s defines no %s OU", m.id, roleName(role))
	}
	id.validate()
	for _, ou := range id.ous {
		if ou.name == n.name {
			return nil
		}
	}
	return fmt.Errorf("identity %s does not carry the %s OU %q of MSP %s", id, roleName(role), n.name, m.id)
}

func roleName(r mspproto.MSPRole_MSPRoleType) string {
	return strings.ToLower(r.String())
}

// SatisfiesPrincipal implements policy.Identity with the principal rules of the MSP's
// version: ROLE (MEMBER: valid; ADMIN: an explicit admin certificate, or from v1.4.3 with
// NodeOUs a valid identity with the admin OU; CLIENT, PEER and, from v1.4.3, ORDERER: valid
// with that node OU), ORGANIZATION_UNIT (valid, with that OU issued by the principal's
// certifiers), IDENTITY (the same certificate, and valid), and from v1.3 COMBINED (every
// sub-principal) and ANONYMITY (X.509 identities are nominal, never anonymous).
func (id *X509Identity) SatisfiesPrincipal(principal *mspproto.MSPPrincipal) error {
	if principal == nil {
		return errors.New("principal is nil")
	}
	principals, err := id.msp.flatten(principal, 0)
	if err != nil {
		return err
	}
	for _, p := range principals {
		if err := id.satisfies(p); err != nil {
			return err
		}
	}
	return nil
}

// maxPrincipalDepth bounds the nesting of COMBINED principals. Fabric has no bound and
// so can be made to exhaust its stack by a deep enough principal in a 10 MB config; a
// real principal is a few levels deep.
const maxPrincipalDepth = 1000

func (m *MSP) flatten(p *mspproto.MSPPrincipal, depth int) ([]*mspproto.MSPPrincipal, error) {
	if p.PrincipalClassification != mspproto.MSPPrincipal_COMBINED {
		return []*mspproto.MSPPrincipal{p}, nil
	}
	if depth >= maxPrincipalDepth {
		return nil, fmt.Errorf("combined principal nested more than %d levels deep", maxPrincipalDepth)
	}
	if m.version < V1_3 {
		return nil, fmt.Errorf("MSP %s (%v) does not support COMBINED principals", m.id, m.version)
	}
	var cp mspproto.CombinedPrincipal
	if err := proto.Unmarshal(p.Principal, &cp); err != nil {
		return nil, fmt.Errorf("combined principal does not parse: %w", err)
	}
	if len(cp.Principals) == 0 {
		return nil, errors.New("combined principal has no principals")
	}
	var out []*mspproto.MSPPrincipal
	for _, sub := range cp.Principals {
		if sub == nil {
			return nil, errors.New("combined principal holds a nil principal")
		}
		flat, err := m.flatten(sub, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, flat...)
	}
	return out, nil
}

func (m *MSP) otherMSP(principalMSP string, id *X509Identity) error {
	return fmt.Errorf("principal names MSP %s but identity %s belongs to MSP %s", principalMSP, id, m.id)
}

func (id *X509Identity) satisfies(p *mspproto.MSPPrincipal) error {
	m := id.msp
	if m.version >= V1_4_3 && m.nodeOUs && p.PrincipalClassification == mspproto.MSPPrincipal_ROLE {
		var role mspproto.MSPRole
		if err := proto.Unmarshal(p.Principal, &role); err != nil {
			return fmt.Errorf("role principal does not parse: %w", err)
		}
		if role.MspIdentifier != m.id {
			return m.otherMSP(role.MspIdentifier, id)
		}
		switch role.Role {
		case mspproto.MSPRole_ADMIN:
			if m.isAdmin(id) {
				return nil
			}
			if err := id.Validate(); err != nil {
				return err
			}
			return m.hasNodeOU(id, mspproto.MSPRole_ADMIN)
		case mspproto.MSPRole_ORDERER:
			if err := id.Validate(); err != nil {
				return err
			}
			return m.hasNodeOU(id, mspproto.MSPRole_ORDERER)
		}
	}
	if m.version >= V1_3 && p.PrincipalClassification == mspproto.MSPPrincipal_ANONYMITY {
		var a mspproto.MSPIdentityAnonymity
		if err := proto.Unmarshal(p.Principal, &a); err != nil {
			return fmt.Errorf("anonymity principal does not parse: %w", err)
		}
		switch a.AnonymityType {
		case mspproto.MSPIdentityAnonymity_NOMINAL:
			// Deliberately without validation, as in Fabric.
			return nil
		case mspproto.MSPIdentityAnonymity_ANONYMOUS:
			return fmt.Errorf("principal requires an anonymous identity and X.509 identity %s is not one", id)
		}
		return fmt.Errorf("unknown anonymity type %d", a.AnonymityType)
	}

	switch p.PrincipalClassification {
	case mspproto.MSPPrincipal_ROLE:
		var role mspproto.MSPRole
		if err := proto.Unmarshal(p.Principal, &role); err != nil {
			return fmt.Errorf("role principal does not parse: %w", err)
		}
		if role.MspIdentifier != m.id {
			return m.otherMSP(role.MspIdentifier, id)
		}
		switch role.Role {
		case mspproto.MSPRole_MEMBER:
			return id.Validate()
		case mspproto.MSPRole_ADMIN:
			if m.isAdmin(id) {
				return nil
			}
			return fmt.Errorf("identity %s is not an admin of MSP %s", id, m.id)
		case mspproto.MSPRole_CLIENT, mspproto.MSPRole_PEER:
			if err := id.Validate(); err != nil {
				return err
			}
			return m.hasNodeOU(id, role.Role)
		case mspproto.MSPRole_ORDERER:
			return fmt.Errorf("MSP %s (%v, NodeOUs %t) cannot recognise the orderer role", m.id, m.version, m.nodeOUs)
		}
		return fmt.Errorf("unknown MSP role %d", role.Role)
	case mspproto.MSPPrincipal_IDENTITY:
		other := m.principals.get(p.Principal)
		if other == nil {
			var err error
			if other, err = m.deserialize(p.Principal); err != nil {
				return fmt.Errorf("identity principal: %w", err)
			}
			m.principals.put(p.Principal, other)
		}
		if !bytes.Equal(id.cert.Raw, other.cert.Raw) {
			return fmt.Errorf("identity %s is not the identity %s named by the principal", id, other)
		}
		return other.Validate()
	case mspproto.MSPPrincipal_ORGANIZATION_UNIT:
		var ou mspproto.OrganizationUnit
		if err := proto.Unmarshal(p.Principal, &ou); err != nil {
			return fmt.Errorf("organization unit principal does not parse: %w", err)
		}
		if ou.MspIdentifier != m.id {
			return m.otherMSP(ou.MspIdentifier, id)
		}
		if err := id.Validate(); err != nil {
			return err
		}
		for _, have := range id.ous {
			if have.name == ou.OrganizationalUnitIdentifier && bytes.Equal(have.certifiers, ou.CertifiersIdentifier) {
				return nil
			}
		}
		return fmt.Errorf("identity %s does not carry OU %q issued by the principal's certifiers", id, ou.OrganizationalUnitIdentifier)
	}
	return fmt.Errorf("MSP %s (%v) does not support principal classification %v", m.id, m.version, p.PrincipalClassification)
}

func (m *MSP) isAdmin(id *X509Identity) bool {
	for _, a := range m.admins {
		if bytes.Equal(a.cert.Raw, id.cert.Raw) {
			return true
		}
	}
	return false
}

// Verify implements policy.Identity: a DER ECDSA signature over the MSP's signature hash
// (SHA-256 for the SHA2 family, SHA3-256 for SHA3) with a low S value. RSA identities
// deserialize, as in Fabric, but their signatures never verify.
func (id *X509Identity) Verify(msg, sig []byte) error {
	pub, ok := id.cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("identity %s has a %T public key; only ECDSA signatures are verified", id, id.cert.PublicKey)
	}
	var digest [32]byte
	switch id.msp.sigHashFamily {
	case HashFamilySHA2:
		digest = sha256.Sum256(msg)
	case HashFamilySHA3:
		digest = sha3.Sum256(msg)
	default:
		return fmt.Errorf("MSP %s has unknown signature hash family %q", id.msp.id, id.msp.sigHashFamily)
	}
	return checkECDSASignature(pub, digest[:], sig, id)
}
