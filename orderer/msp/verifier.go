package msp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/golang/protobuf/proto"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
	"github.com/kordhq/kord/orderer/msp/p256"
)

// Verifier checks that sig is creator's signature over msg. creator is a
// marshalled msp.SerializedIdentity as found in a SignatureHeader.
//
// SignatureVerifier implements it without any membership check; Manager
// implements it with the channel's MSPs (the creator must also be a valid
// member of the MSP it names).
type Verifier interface {
	Verify(creator, msg, sig []byte) error
}

// DefaultCacheSize bounds the parsed-identity cache of a zero-value
// SignatureVerifier. A channel rarely sees more than a few dozen distinct
// creators, so this comfortably holds the working set.
const DefaultCacheSize = 1024

// Identity is a deserialized creator. Values returned by SignatureVerifier
// are shared through its cache and must not be modified.
type Identity struct {
	MSPID       string
	Certificate *x509.Certificate
	PublicKey   *ecdsa.PublicKey
}

// String names the identity the way operators recognise it in logs,
// e.g. "Org1MSP/CN=User1@org1.example.com".
func (id *Identity) String() string {
	return id.MSPID + "/CN=" + id.Certificate.Subject.CommonName
}

// SignatureVerifier verifies ECDSA signatures of X.509 identities without
// validating the certificate chain (Manager does that with a channel's MSPs).
// The zero value is ready to use and safe for concurrent use.
type SignatureVerifier struct {
	// MaxCached bounds the number of parsed identities kept; zero means
	// DefaultCacheSize. Set it before first use.
	MaxCached int

	mu    sync.RWMutex
	cache map[string]*Identity
}

// NewSignatureVerifier returns a verifier whose cache holds at most
// maxCached identities (DefaultCacheSize when maxCached <= 0).
func NewSignatureVerifier(maxCached int) *SignatureVerifier {
	return &SignatureVerifier{MaxCached: maxCached}
}

var _ Verifier = (*SignatureVerifier)(nil)

// Verify implements Verifier.
func (v *SignatureVerifier) Verify(creator, msg, sig []byte) error {
	id, err := v.DeserializeIdentity(creator)
	if err != nil {
		return err
	}
	return VerifyWithIdentity(id, msg, sig)
}

// VerifyWithIdentity checks sig against an already deserialized identity.
func VerifyWithIdentity(id *Identity, msg, sig []byte) error {
	// Fabric hashes with its MSP's hash family (SHA2 → SHA-256) whatever the
	// curve, so P-384 keys are verified over SHA-256 as well.
	digest := sha256.Sum256(msg)
	return checkECDSASignature(id.PublicKey, digest[:], sig, id)
}

// keyTables verifies signatures of the keys that sign most with precomputed tables: the
// same few client identities sign nearly every envelope, and the table halves the cost of
// the one signature check each envelope needs. Verdicts are crypto/ecdsa's.
var keyTables = p256.NewCache(p256.DefaultMaxKeys, p256.DefaultMinUses)

// checkECDSASignature verifies a DER signature over digest the way Fabric's
// software crypto provider does; who names the signer in errors.
func checkECDSASignature(pub *ecdsa.PublicKey, digest, sig []byte, who fmt.Stringer) error {
	r, s, err := parseSignature(sig)
	if err != nil {
		return fmt.Errorf("signature of identity %s: %w", who, err)
	}
	// Both r,s and r,n-s verify; Fabric accepts only the low-S form so that a
	// transaction cannot be re-broadcast under a different byte encoding.
	if s.Cmp(halfOrder(pub.Curve)) > 0 {
		return fmt.Errorf("signature of identity %s has a high S value; Fabric accepts only low-S signatures", who)
	}
	// Extra elements inside the SEQUENCE, which Fabric's parser tolerates, make no
	// difference: r and s are what is verified.
	if !keyTables.Verify(pub, digest, r, s) {
		return fmt.Errorf("signature does not verify for identity %s", who)
	}
	return nil
}

// halfOrders holds n/2 of the curves Fabric uses, so that the hot verification path
// allocates nothing for the low-S check.
var halfOrders = map[elliptic.Curve]*big.Int{
	elliptic.P224(): new(big.Int).Rsh(elliptic.P224().Params().N, 1),
	elliptic.P256(): new(big.Int).Rsh(elliptic.P256().Params().N, 1),
	elliptic.P384(): new(big.Int).Rsh(elliptic.P384().Params().N, 1),
	elliptic.P521(): new(big.Int).Rsh(elliptic.P521().Params().N, 1),
}

func halfOrder(c elliptic.Curve) *big.Int {
	if h, ok := halfOrders[c]; ok {
		return h
	}
	return new(big.Int).Rsh(c.Params().N, 1)
}

// parseSignature returns r and s.
func parseSignature(sig []byte) (*big.Int, *big.Int, error) {
	if len(sig) == 0 {
		return nil, nil, errors.New("signature is empty")
	}
	var parsed ecdsaSignature
	// Trailing bytes after the SEQUENCE are ignored on purpose: Fabric's
	// parser ignores them too, and a drop-in replacement must not refuse
	// envelopes a Fabric orderer accepts.
	_, err := asn1.Unmarshal(sig, &parsed)
	if err != nil {
		return nil, nil, fmt.Errorf("signature is not a DER-encoded ECDSA signature: %w", err)
	}
	if parsed.R == nil || parsed.S == nil || parsed.R.Sign() <= 0 || parsed.S.Sign() <= 0 {
		return nil, nil, errors.New("signature has a zero or negative component")
	}
	return parsed.R, parsed.S, nil
}

// DeserializeIdentity parses a marshalled SerializedIdentity holding a PEM
// X.509 certificate with an ECDSA P-256 or P-384 key. Results are cached by
// the creator bytes, since the same few creators sign nearly every envelope
// and parsing a certificate costs more than verifying a signature.
func (v *SignatureVerifier) DeserializeIdentity(creator []byte) (*Identity, error) {
	key := string(creator)
	v.mu.RLock()
	id, ok := v.cache[key]
	v.mu.RUnlock()
	if ok {
		return id, nil
	}

	id, err := parseIdentity(creator)
	if err != nil {
		return nil, err
	}

	limit := v.MaxCached
	if limit <= 0 {
		limit = DefaultCacheSize
	}
	v.mu.Lock()
	if v.cache == nil {
		v.cache = make(map[string]*Identity)
	}
	if len(v.cache) >= limit {
		// Evicting an arbitrary entry keeps the hot path free of LRU
		// bookkeeping; a real working set is far below the limit, so this
		// only triggers under a flood of distinct (possibly hostile) creators.
		for k := range v.cache {
			delete(v.cache, k)
			break
		}
	}
	v.cache[key] = id
	v.mu.Unlock()
	return id, nil
}

func parseIdentity(creator []byte) (*Identity, error) {
	if len(creator) == 0 {
		return nil, errors.New("creator is empty")
	}
	var sid mspproto.SerializedIdentity
	if err := proto.Unmarshal(creator, &sid); err != nil {
		return nil, fmt.Errorf("creator is not a serialized identity: %w", err)
	}
	if sid.Mspid == "" {
		return nil, errors.New("creator has no MSP ID")
	}
	block, _ := pem.Decode(sid.IdBytes)
	if block == nil {
		return nil, fmt.Errorf("creator certificate is not valid PEM (MSP %s)", sid.Mspid)
	}
	if block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("creator PEM block is %q, not a CERTIFICATE (MSP %s)", block.Type, sid.Mspid)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("creator certificate of MSP %s does not parse: %w", sid.Mspid, err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("identity %s/CN=%s has a %T public key; only ECDSA is supported", sid.Mspid, cert.Subject.CommonName, cert.PublicKey)
	}
	if pub.Curve != elliptic.P256() && pub.Curve != elliptic.P384() {
		return nil, fmt.Errorf("identity %s/CN=%s uses curve %s; only P-256 and P-384 are supported", sid.Mspid, cert.Subject.CommonName, pub.Curve.Params().Name)
	}
	return &Identity{MSPID: sid.Mspid, Certificate: cert, PublicKey: pub}, nil
}
