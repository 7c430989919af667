// Package mspgen writes a cryptogen-style crypto tree: per organization a
// root CA and a TLS CA, the organization's verifying MSP, and local MSPs
// (signing certificate, private key, NodeOUs config) for its nodes and
// users. It exists so that `orderer dev` and tests can stand up a network
// with the same directory layout Fabric's tooling produces, without
// cryptogen being installed.
//
// Generated material is for development only: keys are written unencrypted.
package mspgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Node OU names, as written into certificates and config.yaml. With NodeOUs
// enabled Fabric classifies an identity by these, so they must be exact.
const (
	OUClient  = "client"
	OUPeer    = "peer"
	OUAdmin   = "admin"
	OUOrderer = "orderer"
)

// AdminUser is the user every organization gets, with the admin OU.
const AdminUser = "Admin"

// validity is how long generated certificates last; long enough that a dev
// network never hits expiry, like cryptogen's ten years.
const validity = 10 * 365 * 24 * time.Hour

// Spec describes the organizations of a tree.
type Spec struct {
	OrdererOrgs []OrgSpec
	PeerOrgs    []OrgSpec
}

// OrgSpec describes one organization.
type OrgSpec struct {
	Name   string // configtx organization name, e.g. "OrdererOrg"
	MSPID  string // e.g. "OrdererMSP"
	Domain string // e.g. "example.com"
	// Nodes are host names without the domain ("orderer0", "peer0"). They get
	// the orderer OU in an orderer organization and the peer OU otherwise.
	Nodes []string
	// Users are the non-admin users ("User1"); Admin is always generated.
	Users []string
}

// DefaultSpec is the network `orderer dev` and the tests use: one orderer
// organization with orderer0, and Org1 and Org2 with peer0, Admin and User1.
func DefaultSpec() Spec {
	return Spec{
		OrdererOrgs: []OrgSpec{{
			Name: "OrdererOrg", MSPID: "OrdererMSP", Domain: "example.com",
			Nodes: []string{"orderer0"},
		}},
		PeerOrgs: []OrgSpec{
			{Name: "Org1", MSPID: "Org1MSP", Domain: "org1.example.com", Nodes: []string{"peer0"}, Users: []string{"User1"}},
			{Name: "Org2", MSPID: "Org2MSP", Domain: "org2.example.com", Nodes: []string{"peer0"}, Users: []string{"User1"}},
		},
	}
}

// OrdererOrgDir is where an orderer organization's tree lives under root.
func OrdererOrgDir(root, domain string) string {
	return filepath.Join(root, "ordererOrganizations", domain)
}

// PeerOrgDir is where a peer organization's tree lives under root.
func PeerOrgDir(root, domain string) string {
	return filepath.Join(root, "peerOrganizations", domain)
}

// OrgMSPDir is the organization's verifying MSP (what goes into channel
// configuration).
func OrgMSPDir(orgDir string) string { return filepath.Join(orgDir, "msp") }

// UserMSPDir is the local MSP of user (e.g. "User1" or AdminUser).
func UserMSPDir(orgDir, domain, user string) string {
	return filepath.Join(orgDir, "users", user+"@"+domain, "msp")
}

// OrdererMSPDir is the local MSP of an orderer node of an orderer organization.
func OrdererMSPDir(orgDir, domain, node string) string {
	return filepath.Join(orgDir, "orderers", node+"."+domain, "msp")
}

// OrdererTLSDir holds ca.crt, server.crt and server.key of an orderer node.
func OrdererTLSDir(orgDir, domain, node string) string {
	return filepath.Join(orgDir, "orderers", node+"."+domain, "tls")
}

// PeerMSPDir is the local MSP of a peer node of a peer organization.
func PeerMSPDir(orgDir, domain, node string) string {
	return filepath.Join(orgDir, "peers", node+"."+domain, "msp")
}

// Generate writes the tree for spec under dir. An organization whose
// directory already exists is left untouched, so re-running on the same
// directory keeps the same identities. Each organization is built in a
// temporary directory and renamed into place, so an interrupted run never
// leaves a half-written organization that a later run would mistake for a
// complete one.
func Generate(dir string, spec Spec) error {
	if dir == "" {
		return errors.New("generating crypto tree: directory is empty")
	}
	for _, org := range spec.OrdererOrgs {
		if err := generateOrg(OrdererOrgDir(dir, org.Domain), org, true); err != nil {
			return fmt.Errorf("generating orderer organization %s: %w", org.Name, err)
		}
	}
	for _, org := range spec.PeerOrgs {
		if err := generateOrg(PeerOrgDir(dir, org.Domain), org, false); err != nil {
			return fmt.Errorf("generating peer organization %s: %w", org.Name, err)
		}
	}
	return nil
}

func generateOrg(orgDir string, org OrgSpec, ordererOrg bool) error {
	if err := validName("domain", org.Domain); err != nil {
		return err
	}
	for _, n := range org.Nodes {
		if err := validName("node name", n); err != nil {
			return err
		}
	}
	for _, u := range org.Users {
		if err := validName("user name", u); err != nil {
			return err
		}
	}
	if _, err := os.Stat(orgDir); err == nil {
		if _, err := os.Stat(filepath.Join(orgDir, "msp", "cacerts")); err != nil {
			return fmt.Errorf("%s exists but is not a generated organization (no msp/cacerts); remove it or pick another directory", orgDir)
		}
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("checking %s: %w", orgDir, err)
	}

	parent := filepath.Dir(orgDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(orgDir)+".tmp-")
	if err != nil {
		return fmt.Errorf("creating temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	if err := buildOrg(tmp, org, ordererOrg); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("setting permissions of %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, orgDir); err != nil {
		return fmt.Errorf("moving organization into %s: %w", orgDir, err)
	}
	return nil
}

// validName refuses names that would escape the tree or collide with the
// directory structure when joined into paths.
func validName(what, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\@") {
		return fmt.Errorf("invalid %s %q", what, name)
	}
	return nil
}

// authority is a CA able to issue certificates.
type authority struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
	keyPEM  []byte
}

func buildOrg(dir string, org OrgSpec, ordererOrg bool) error {
	ca, err := newAuthority("ca."+org.Domain, org.Domain)
	if err != nil {
		return err
	}
	tlsCA, err := newAuthority("tlsca."+org.Domain, org.Domain)
	if err != nil {
		return err
	}
	caFile := "ca." + org.Domain + "-cert.pem"
	tlsCAFile := "tlsca." + org.Domain + "-cert.pem"

	files := map[string][]byte{
		"ca/" + caFile:       ca.certPEM,
		"ca/priv_sk":         ca.keyPEM,
		"tlsca/" + tlsCAFile: tlsCA.certPEM,
		"tlsca/priv_sk":      tlsCA.keyPEM,
	}
	if err := writeFiles(dir, files); err != nil {
		return err
	}
	if err := writeVerifyingMSP(filepath.Join(dir, "msp"), ca, tlsCA, caFile, tlsCAFile); err != nil {
		return err
	}

	nodeOU, nodeKind := OUPeer, "peers"
	if ordererOrg {
		nodeOU, nodeKind = OUOrderer, "orderers"
	}
	for _, node := range org.Nodes {
		host := node + "." + org.Domain
		base := filepath.Join(dir, nodeKind, host)
		if err := writeLocalMSP(filepath.Join(base, "msp"), host, nodeOU, ca, tlsCA, caFile, tlsCAFile); err != nil {
			return fmt.Errorf("node %s: %w", host, err)
		}
		if err := writeTLS(filepath.Join(base, "tls"), host, []string{host, node}, tlsCA, "server"); err != nil {
			return fmt.Errorf("node %s: %w", host, err)
		}
	}

	users := []string{AdminUser}
	for _, u := range org.Users {
		if u != AdminUser {
			users = append(users, u)
		}
	}
	for _, user := range users {
		name := user + "@" + org.Domain
		ou := OUClient
		if user == AdminUser {
			ou = OUAdmin
		}
		base := filepath.Join(dir, "users", name)
		if err := writeLocalMSP(filepath.Join(base, "msp"), name, ou, ca, tlsCA, caFile, tlsCAFile); err != nil {
			return fmt.Errorf("user %s: %w", name, err)
		}
		if err := writeTLS(filepath.Join(base, "tls"), name, []string{name}, tlsCA, "client"); err != nil {
			return fmt.Errorf("user %s: %w", name, err)
		}
	}
	return nil
}

// writeVerifyingMSP writes the organization MSP: trust anchors and NodeOUs,
// no keys. admincerts stays empty because with NodeOUs admins are recognised
// by their OU, exactly as cryptogen leaves it.
func writeVerifyingMSP(mspDir string, ca, tlsCA *authority, caFile, tlsCAFile string) error {
	if err := os.MkdirAll(filepath.Join(mspDir, "admincerts"), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", mspDir, err)
	}
	return writeFiles(mspDir, map[string][]byte{
		"cacerts/" + caFile:       ca.certPEM,
		"tlscacerts/" + tlsCAFile: tlsCA.certPEM,
		"config.yaml":             nodeOUsConfig(caFile),
	})
}

func writeLocalMSP(mspDir, name, ou string, ca, tlsCA *authority, caFile, tlsCAFile string) error {
	key, err := newKey()
	if err != nil {
		return err
	}
	tmpl := leafTemplate(name, []string{ou})
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	certPEM, err := ca.issue(tmpl, &key.PublicKey)
	if err != nil {
		return fmt.Errorf("issuing signing certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	if err := writeVerifyingMSP(mspDir, ca, tlsCA, caFile, tlsCAFile); err != nil {
		return err
	}
	return writeFiles(mspDir, map[string][]byte{
		"signcerts/" + name + "-cert.pem": certPEM,
		"keystore/priv_sk":                keyPEM,
	})
}

// writeTLS writes ca.crt plus <role>.crt/<role>.key, the names Fabric's
// sample configurations point at.
func writeTLS(tlsDir, name string, hosts []string, tlsCA *authority, role string) error {
	key, err := newKey()
	if err != nil {
		return err
	}
	tmpl := leafTemplate(name, nil)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if role == "server" {
		// Dev networks dial orderers on loopback; without these SANs TLS
		// would need host-file tricks.
		tmpl.DNSNames = append(tmpl.DNSNames, "localhost")
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IPv4(127, 0, 0, 1), net.IPv6loopback)
	}
	certPEM, err := tlsCA.issue(tmpl, &key.PublicKey)
	if err != nil {
		return fmt.Errorf("issuing TLS certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	return writeFiles(tlsDir, map[string][]byte{
		"ca.crt":      tlsCA.certPEM,
		role + ".crt": certPEM,
		role + ".key": keyPEM,
	})
}

func nodeOUsConfig(caFile string) []byte {
	var b strings.Builder
	b.WriteString("NodeOUs:\n  Enable: true\n")
	for _, e := range []struct{ key, ou string }{
		{"ClientOUIdentifier", OUClient},
		{"PeerOUIdentifier", OUPeer},
		{"AdminOUIdentifier", OUAdmin},
		{"OrdererOUIdentifier", OUOrderer},
	} {
		fmt.Fprintf(&b, "  %s:\n    Certificate: cacerts/%s\n    OrganizationalUnitIdentifier: %s\n", e.key, caFile, e.ou)
	}
	return []byte(b.String())
}

func newAuthority(commonName, org string) (*authority, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	notBefore := time.Now().Add(-5 * time.Minute).UTC().Truncate(time.Minute)
	ski := subjectKeyID(&key.PublicKey)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Country:      []string{"US"},
			Province:     []string{"California"},
			Locality:     []string{"San Francisco"},
			Organization: []string{org},
			CommonName:   commonName,
		},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          ski,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate %s: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("re-reading CA certificate %s: %w", commonName, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &authority{
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:     key,
		keyPEM:  keyPEM,
	}, nil
}

// leafTemplate mirrors cryptogen's leaf subject: the CA's location fields,
// the entity name as CN, and the node OU.
func leafTemplate(commonName string, ous []string) *x509.Certificate {
	notBefore := time.Now().Add(-5 * time.Minute).UTC().Truncate(time.Minute)
	return &x509.Certificate{
		Subject: pkix.Name{
			Country:            []string{"US"},
			Province:           []string{"California"},
			Locality:           []string{"San Francisco"},
			OrganizationalUnit: ous,
			CommonName:         commonName,
		},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(validity),
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
}

func (a *authority) issue(tmpl *x509.Certificate, pub *ecdsa.PublicKey) ([]byte, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.SubjectKeyId = subjectKeyID(pub)
	tmpl.AuthorityKeyId = a.cert.SubjectKeyId
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, pub, a.key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating P-256 key: %w", err)
	}
	return key, nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	return serial, nil
}

// subjectKeyID is SHA-256 of the uncompressed public point, the identifier
// Fabric's key store uses, so SKI-named key files line up with certificates.
func subjectKeyID(pub *ecdsa.PublicKey) []byte {
	point, err := pub.ECDH()
	if err != nil {
		// Only reachable for keys not on a NIST curve, which newKey never makes.
		return nil
	}
	sum := sha256.Sum256(point.Bytes())
	return sum[:]
}

func writeFiles(dir string, files map[string][]byte) error {
	for rel, data := range files {
		path := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(rel, "priv_sk") || strings.HasSuffix(rel, ".key") {
			mode = 0o600
		}
		if err := os.WriteFile(path, data, mode); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return nil
}
