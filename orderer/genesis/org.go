package genesis

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hyperledger/fabric-config/configtx"
	"github.com/hyperledger/fabric-config/configtx/membership"
	"gopkg.in/yaml.v3"
)

// OrdererOrgPolicies are the organization policies configtxgen's sample
// configuration gives an orderer organization: any member reads and writes,
// an admin administers.
func OrdererOrgPolicies(mspID string) map[string]configtx.Policy {
	return map[string]configtx.Policy{
		configtx.ReadersPolicyKey: sigPolicy("OR('%s.member')", mspID),
		configtx.WritersPolicyKey: sigPolicy("OR('%s.member')", mspID),
		configtx.AdminsPolicyKey:  sigPolicy("OR('%s.admin')", mspID),
	}
}

// ApplicationOrgPolicies are the policies of an application organization
// whose MSP classifies identities with NodeOUs, as in Fabric's test network
// (and the conformance vectors): writers are clients or admins, endorsers
// are peers. The Endorsement policy is what the channel-level
// "MAJORITY Endorsement" lifecycle policies resolve to.
func ApplicationOrgPolicies(mspID string) map[string]configtx.Policy {
	return map[string]configtx.Policy{
		configtx.ReadersPolicyKey:     sigPolicy("OR('%[1]s.admin', '%[1]s.peer', '%[1]s.client')", mspID),
		configtx.WritersPolicyKey:     sigPolicy("OR('%[1]s.admin', '%[1]s.client')", mspID),
		configtx.AdminsPolicyKey:      sigPolicy("OR('%s.admin')", mspID),
		configtx.EndorsementPolicyKey: sigPolicy("OR('%s.peer')", mspID),
	}
}

// memberApplicationOrgPolicies is the fallback for MSPs without NodeOUs, where
// the peer/client roles cannot be told apart.
func memberApplicationOrgPolicies(mspID string) map[string]configtx.Policy {
	p := OrdererOrgPolicies(mspID)
	p[configtx.EndorsementPolicyKey] = sigPolicy("OR('%s.member')", mspID)
	return p
}

func sigPolicy(format, mspID string) configtx.Policy {
	return configtx.Policy{Type: configtx.SignaturePolicyType, Rule: fmt.Sprintf(format, mspID)}
}

// OrgFromMSPDir builds an organization from a verifying MSP directory
// (cacerts, intermediatecerts, admincerts, crls, tlscacerts,
// tlsintermediatecerts, config.yaml) with OrdererOrgPolicies. Callers set OrdererEndpoints or
// AnchorPeers and may replace the policies.
func OrgFromMSPDir(name, id, mspDir string) (configtx.Organization, error) {
	if name == "" || id == "" {
		return configtx.Organization{}, fmt.Errorf("organization from %s: name and MSP ID are required", mspDir)
	}
	m, err := mspFromDir(id, mspDir)
	if err != nil {
		return configtx.Organization{}, fmt.Errorf("organization %s: %w", name, err)
	}
	return configtx.Organization{Name: name, MSP: m, Policies: OrdererOrgPolicies(id)}, nil
}

func mspFromDir(id, dir string) (configtx.MSP, error) {
	m := configtx.MSP{
		Name: id,
		// What configtxgen writes for Fabric's default (and only) hash family.
		CryptoConfig: membership.CryptoConfig{SignatureHashFamily: "SHA2", IdentityIdentifierHashFunction: "SHA256"},
	}
	var err error
	if m.RootCerts, err = certsInDir(filepath.Join(dir, "cacerts"), true); err != nil {
		return configtx.MSP{}, err
	}
	if len(m.RootCerts) == 0 {
		return configtx.MSP{}, fmt.Errorf("MSP %s: %s holds no certificate", id, filepath.Join(dir, "cacerts"))
	}
	for _, d := range []struct {
		sub string
		dst *[]*x509.Certificate
	}{
		{"intermediatecerts", &m.IntermediateCerts},
		{"admincerts", &m.Admins},
		{"tlscacerts", &m.TLSRootCerts},
		{"tlsintermediatecerts", &m.TLSIntermediateCerts},
	} {
		if *d.dst, err = certsInDir(filepath.Join(dir, d.sub), false); err != nil {
			return configtx.MSP{}, err
		}
	}
	// configtxgen puts the CRLs of the directory into the channel config; an
	// organization that revoked a certificate must not lose that in its
	// genesis block.
	if m.RevocationList, err = crlsInDir(filepath.Join(dir, "crls")); err != nil {
		return configtx.MSP{}, err
	}
	if err := applyMSPConfigYAML(&m, dir); err != nil {
		return configtx.MSP{}, err
	}
	return m, nil
}

// filesInDir lists the regular, non-hidden files of dir in name order, so that generated
// configs are stable across runs. A missing dir is an empty list unless required.
func filesInDir(dir string, required bool) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) && !required {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// certsInDir reads every CERTIFICATE block of every file in dir, in file
// name order so the generated config is stable across runs.
func certsInDir(dir string, required bool) ([]*x509.Certificate, error) {
	names, err := filesInDir(dir, required)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for _, n := range names {
		path := filepath.Join(dir, n)
		c, err := readCerts(path)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c...)
	}
	return certs, nil
}

// crlsInDir reads the CRLs of dir, one per file in file name order as
// Fabric reads them (the first PEM block of each file; files without PEM
// are skipped, like Fabric's loader does).
func crlsInDir(dir string) ([]*pkix.CertificateList, error) {
	names, err := filesInDir(dir, false)
	if err != nil {
		return nil, err
	}
	var crls []*pkix.CertificateList
	for _, n := range names {
		path := filepath.Join(dir, n)
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading CRL: %w", err)
		}
		block, _ := pem.Decode(raw)
		if block == nil {
			continue
		}
		if block.Type != "X509 CRL" {
			return nil, fmt.Errorf("%s: PEM block is %q, want \"X509 CRL\"", path, block.Type)
		}
		if _, err := x509.ParseRevocationList(block.Bytes); err != nil {
			return nil, fmt.Errorf("parsing CRL %s: %w", path, err)
		}
		crl := &pkix.CertificateList{}
		if rest, err := asn1.Unmarshal(block.Bytes, crl); err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("parsing CRL %s: not a single DER CertificateList (%v)", path, err)
		}
		crls = append(crls, crl)
	}
	return crls, nil
}

func readCerts(path string) ([]*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading certificate: %w", err)
	}
	var certs []*x509.Certificate
	for rest := raw; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate %s: %w", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return certs, nil
}

// issuingCA is the one CA of m that can issue identities: Fabric accepts
// only identities issued by a CA at the bottom of the MSP's tree (one that
// issued none of its intermediate CAs), so the root of an MSP without
// intermediates, or its single bottom intermediate. An OU identifier bound to
// it is equivalent to one bound to no CA; with several, there is no such CA.
func issuingCA(m *configtx.MSP) (*x509.Certificate, error) {
	var bottom []*x509.Certificate
	for _, ca := range append(append([]*x509.Certificate{}, m.RootCerts...), m.IntermediateCerts...) {
		issuer := false
		for _, ic := range m.IntermediateCerts {
			if ic != ca && ic.CheckSignatureFrom(ca) == nil {
				issuer = true
				break
			}
		}
		if !issuer {
			bottom = append(bottom, ca)
		}
	}
	if len(bottom) != 1 {
		return nil, fmt.Errorf("the MSP has %d CAs that issue identities, and a channel config generated here cannot leave an OU identifier unbound: name the issuing CA's certificate", len(bottom))
	}
	return bottom[0], nil
}

type ouIdentifierYAML struct {
	Certificate                  string `yaml:"Certificate"`
	OrganizationalUnitIdentifier string `yaml:"OrganizationalUnitIdentifier"`
}

type mspConfigYAML struct {
	OrganizationalUnitIdentifiers []ouIdentifierYAML `yaml:"OrganizationalUnitIdentifiers"`
	NodeOUs                       *struct {
		Enable              bool              `yaml:"Enable"`
		ClientOUIdentifier  *ouIdentifierYAML `yaml:"ClientOUIdentifier"`
		PeerOUIdentifier    *ouIdentifierYAML `yaml:"PeerOUIdentifier"`
		AdminOUIdentifier   *ouIdentifierYAML `yaml:"AdminOUIdentifier"`
		OrdererOUIdentifier *ouIdentifierYAML `yaml:"OrdererOUIdentifier"`
	} `yaml:"NodeOUs"`
}

func applyMSPConfigYAML(m *configtx.MSP, dir string) error {
	path := filepath.Join(dir, "config.yaml")
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading MSP config: %w", err)
	}
	var cfg mspConfigYAML
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("parsing %s: %w", path, err)
	}
	resolve := func(what string, y *ouIdentifierYAML) (membership.OUIdentifier, error) {
		if y == nil {
			// fabric-config v0.1.0 always writes all four NodeOU identifiers
			// once NodeOUs are set, so a missing one cannot be expressed.
			return membership.OUIdentifier{}, fmt.Errorf("%s: NodeOUs is enabled but %s is missing", path, what)
		}
		id := membership.OUIdentifier{OrganizationalUnitIdentifier: y.OrganizationalUnitIdentifier}
		if y.Certificate == "" {
			// Fabric reads an identifier without a certificate as "any of the
			// MSP's CAs". fabric-config needs one; the CA that issues the
			// MSP's identities means the same thing when there is one.
			ca, err := issuingCA(m)
			if err != nil {
				return membership.OUIdentifier{}, fmt.Errorf("%s %s has no Certificate: %w", path, what, err)
			}
			id.Certificate = ca
			return id, nil
		}
		certPath := y.Certificate
		if !filepath.IsAbs(certPath) {
			certPath = filepath.Join(dir, certPath)
		}
		certs, err := readCerts(certPath)
		if err != nil {
			return membership.OUIdentifier{}, fmt.Errorf("%s %s: %w", path, what, err)
		}
		id.Certificate = certs[0]
		return id, nil
	}
	for i := range cfg.OrganizationalUnitIdentifiers {
		id, err := resolve("OrganizationalUnitIdentifiers", &cfg.OrganizationalUnitIdentifiers[i])
		if err != nil {
			return err
		}
		m.OrganizationalUnitIdentifiers = append(m.OrganizationalUnitIdentifiers, id)
	}
	if cfg.NodeOUs == nil || !cfg.NodeOUs.Enable {
		return nil
	}
	n := &m.NodeOUs
	n.Enable = true
	for _, e := range []struct {
		what string
		y    *ouIdentifierYAML
		dst  *membership.OUIdentifier
	}{
		{"ClientOUIdentifier", cfg.NodeOUs.ClientOUIdentifier, &n.ClientOUIdentifier},
		{"PeerOUIdentifier", cfg.NodeOUs.PeerOUIdentifier, &n.PeerOUIdentifier},
		{"AdminOUIdentifier", cfg.NodeOUs.AdminOUIdentifier, &n.AdminOUIdentifier},
		{"OrdererOUIdentifier", cfg.NodeOUs.OrdererOUIdentifier, &n.OrdererOUIdentifier},
	} {
		if *e.dst, err = resolve(e.what, e.y); err != nil {
			return err
		}
	}
	return nil
}
