package msp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"
)

var (
	oidSubjectKeyID    = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidAuthorityKeyID  = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidSubjectAltName  = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidNameConstraints = asn1.ObjectIdentifier{2, 5, 29, 30}
)

func hasExtension(exts []pkix.Extension, oid asn1.ObjectIdentifier) bool {
	for _, e := range exts {
		if e.Id.Equal(oid) {
			return true
		}
	}
	return false
}

// parsePEMCert decodes the first PEM block of b as a certificate. Fabric ignores the
// block type and anything after the first block, so we do too: a stricter parser would
// refuse identities and configurations that Fabric orderers accept.
func parsePEMCert(b []byte) (*x509.Certificate, error) {
	if len(b) == 0 {
		return nil, errors.New("certificate is empty")
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate: %w", err)
	}
	return cert, nil
}

func certName(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return fmt.Sprintf("CN=%s, SN %x", c.Subject.CommonName, c.SerialNumber)
	}
	return fmt.Sprintf("%s, SN %x", c.Subject, c.SerialNumber)
}

// chainOptions builds chains as of one second after cert's NotBefore. Fabric does this so
// that certificate expiry is never part of MSP validation (expiry of a creator is checked
// separately by the orderer); it still requires every CA of the chain to have been valid
// when cert was issued.
func chainOptions(roots, intermediates *x509.CertPool, cert *x509.Certificate) x509.VerifyOptions {
	// KeyUsages stays empty, which Go reads as "server authentication": Fabric verifies
	// with the same options, so a certificate whose extended key usage excludes it is
	// invalid for Fabric as well.
	return x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   cert.NotBefore.Add(time.Second),
	}
}

// uniqueChain verifies cert and requires exactly one chain: with two, which CA vouches for
// the identity (and so its OU certifiers) would be ambiguous.
func uniqueChain(cert *x509.Certificate, opts x509.VerifyOptions) ([]*x509.Certificate, error) {
	chains, err := cert.Verify(opts)
	if err != nil {
		return nil, err
	}
	if len(chains) != 1 {
		return nil, fmt.Errorf("certificate has %d validation chains; an MSP accepts exactly one", len(chains))
	}
	if err := legacyNameConstraints(chains[0]); err != nil {
		return nil, err
	}
	return chains[0], nil
}

// legacyNameConstraints keeps a rule that Go's verifier applied until Go 1.15 and Fabric
// re-applies: a leaf without subject alternative names whose common name looks like a
// host name is invalid under a CA carrying name constraints.
func legacyNameConstraints(chain []*x509.Certificate) error {
	if len(chain) < 2 {
		return nil
	}
	leaf := chain[0]
	if hasExtension(leaf.Extensions, oidSubjectAltName) || !looksLikeHostname(leaf.Subject.CommonName) {
		return nil
	}
	for _, ca := range chain[1:] {
		if hasExtension(ca.Extensions, oidNameConstraints) {
			return x509.CertificateInvalidError{Cert: leaf, Reason: x509.NameConstraintsWithoutSANs}
		}
	}
	return nil
}

// looksLikeHostname is the lenient host-name test of RFC 6125 section 2.2 that Go used for
// the rule above: dot-separated non-empty labels of letters, digits, inner hyphens, '_' and
// ':', with an optional leading "*" label.
func looksLikeHostname(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return false
	}
	for i, label := range strings.Split(host, ".") {
		if label == "" {
			return false
		}
		if i == 0 && label == "*" {
			continue
		}
		for j, c := range label {
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == ':':
			case c == '-' && j != 0:
			default:
				return false
			}
		}
	}
	return true
}

func isECDSASigned(c *x509.Certificate) bool {
	switch c.SignatureAlgorithm {
	case x509.ECDSAWithSHA1, x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512:
		return true
	}
	return false
}

// rawCertificate is the outer structure of an X.509 certificate with the signed part
// kept as bytes, so that only the signature is re-encoded.
type rawCertificate struct {
	TBS       asn1.RawValue
	Algorithm asn1.RawValue
	Signature asn1.BitString
}

// lowSCertificate returns cert with its ECDSA signature in canonical low-S DER form.
// Fabric compares certificates (admins, identity principals, identity keys, OU certifier
// hashes) after this normalisation, so that the two encodings of one signature, (r, s) and
// (r, n-s), are one certificate; we must compare the same bytes to reach the same results.
func lowSCertificate(cert, issuer *x509.Certificate) (*x509.Certificate, error) {
	pub, ok := issuer.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		// Unreachable once the chain verified: an ECDSA signature needs an ECDSA issuer.
		return cert, nil
	}
	var sig ecdsaSignature
	if _, err := asn1.Unmarshal(cert.Signature, &sig); err != nil {
		return nil, fmt.Errorf("certificate signature is not DER ECDSA: %w", err)
	}
	if sig.R == nil || sig.S == nil || sig.R.Sign() <= 0 || sig.S.Sign() <= 0 {
		return nil, errors.New("certificate signature has a zero or negative component")
	}
	n := pub.Curve.Params().N
	if sig.S.Cmp(halfOrder(pub.Curve)) > 0 {
		sig.S = new(big.Int).Sub(n, sig.S)
	}
	canonical, err := asn1.Marshal(sig)
	if err != nil {
		return nil, fmt.Errorf("re-encoding certificate signature: %w", err)
	}
	if bytes.Equal(canonical, cert.Signature) {
		return cert, nil
	}
	var rc rawCertificate
	if _, err := asn1.Unmarshal(cert.Raw, &rc); err != nil {
		return nil, fmt.Errorf("re-reading certificate: %w", err)
	}
	rc.Signature = asn1.BitString{Bytes: canonical, BitLength: 8 * len(canonical)}
	der, err := asn1.Marshal(rc)
	if err != nil {
		return nil, fmt.Errorf("re-encoding certificate: %w", err)
	}
	out, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("re-parsing normalised certificate: %w", err)
	}
	return out, nil
}

// idCache is a bounded, concurrency-safe map of identities in two generations: entries go
// into the current generation; when it is full it becomes the old one and the previous old
// generation is dropped. A hit in the old generation moves the entry forward, so the
// working set survives while a flood of one-off identities cannot grow the cache beyond
// its bound. Hits take only a read lock and do no bookkeeping.
type idCache struct {
	half int
	mu   sync.RWMutex
	cur  map[string]*X509Identity
	old  map[string]*X509Identity
}

func newIDCache(size int) *idCache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	half := max(size/2, 1)
	return &idCache{half: half, cur: make(map[string]*X509Identity, half)}
}

func (c *idCache) get(key []byte) *X509Identity {
	c.mu.RLock()
	id, ok := c.cur[string(key)]
	if !ok {
		id = c.old[string(key)]
	}
	c.mu.RUnlock()
	if !ok && id != nil {
		c.put(key, id)
	}
	return id
}

func (c *idCache) put(key []byte, id *X509Identity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= c.half {
		c.old = c.cur
		c.cur = make(map[string]*X509Identity, c.half)
	}
	c.cur[string(key)] = id
}

func (c *idCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.old)
}
