package msp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
)

// NonceSize is the length of the random nonce in every signature header.
// Fabric's own components use 24 bytes; peers do not check the length, but
// matching it keeps our headers indistinguishable from a Fabric orderer's.
const NonceSize = 24

// Signer is a local signing identity loaded from an MSP directory.
// It is safe for concurrent use.
type Signer struct {
	mspID      string
	certPEM    []byte
	cert       *x509.Certificate
	key        *ecdsa.PrivateKey
	serialized []byte
	id         *X509Identity
}

// LoadSigner reads a Fabric local MSP directory (as written by cryptogen or
// a Fabric CA client) and performs the checks a Fabric node makes at start-up:
// the local MSP (cacerts, intermediatecerts, admincerts, crls, tlscacerts,
// config.yaml with NodeOUs) sets up, the signing certificate (the first PEM
// file of signcerts/) chains to its CAs and has not expired, and keystore/
// holds its private key (PKCS#8 or SEC1 "EC PRIVATE KEY", any file name).
// Like Fabric it does not require the signing identity to be a valid member of
// its own local MSP (the channel MSPs decide that); Validate checks it.
func LoadSigner(mspDir, mspID string) (*Signer, error) {
	if mspID == "" {
		return nil, errors.New("loading local MSP: MSP ID is empty")
	}
	if info, err := os.Stat(mspDir); err != nil {
		return nil, fmt.Errorf("loading local MSP %s: %w", mspDir, err)
	} else if !info.IsDir() {
		return nil, fmt.Errorf("loading local MSP: %s is not a directory", mspDir)
	}
	fail := func(err error) (*Signer, error) {
		return nil, fmt.Errorf("loading local MSP %s: %w", mspDir, err)
	}

	certPath, cert, err := loadSignCert(filepath.Join(mspDir, dirSignCerts))
	if err != nil {
		return fail(err)
	}
	conf, err := VerifyingMSPConfig(mspDir, mspID)
	if err != nil {
		return nil, fmt.Errorf("loading local MSP: %w", err)
	}
	local, err := New(conf)
	if err != nil {
		return fail(err)
	}
	id, err := local.newIdentity(cert)
	if err != nil {
		return fail(fmt.Errorf("signing certificate %s: %w", certPath, err))
	}
	if now := time.Now(); now.After(cert.NotAfter) {
		return fail(fmt.Errorf("signing certificate %s expired at %s", certPath, cert.NotAfter.UTC().Format(time.RFC3339)))
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return fail(fmt.Errorf("signing certificate %s does not hold an ECDSA public key", certPath))
	}
	key, err := loadMatchingKey(filepath.Join(mspDir, dirKeystore), pub, certPath)
	if err != nil {
		return fail(err)
	}

	// The creator is the PEM of the normalised certificate, not the file: a
	// Fabric node serializes its identity that way, so a signcert with a
	// high-S CA signature yields the same creator bytes from kord and Fabric.
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.cert.Raw})
	serialized, err := proto.Marshal(&mspproto.SerializedIdentity{Mspid: mspID, IdBytes: certPEM})
	if err != nil {
		return fail(fmt.Errorf("serializing identity: %w", err))
	}
	return &Signer{mspID: mspID, certPEM: certPEM, cert: id.cert, key: key, serialized: serialized, id: id}, nil
}

// Validate checks the signing identity against its own local MSP with the
// full MSP rules (chain, CRLs, OU and NodeOU classification). Fabric does not
// do this at start-up; it is offered so that a misconfigured identity can be
// reported before the channels refuse its signatures.
func (s *Signer) Validate() error {
	return s.id.Validate()
}

// loadSignCert returns the first file of signcerts/, in name order, that holds
// PEM, as Fabric does; picking a stable one keeps restarts deterministic when
// someone leaves a stray file behind.
func loadSignCert(dir string) (string, *x509.Certificate, error) {
	names, err := regularFiles(dir)
	if err != nil {
		return "", nil, err
	}
	if len(names) == 0 {
		return "", nil, fmt.Errorf("%s holds no certificate", dir)
	}
	var problems []string
	for _, name := range names {
		path := filepath.Join(dir, name)
		raw, err := os.ReadFile(path)
		if err != nil {
			return "", nil, fmt.Errorf("reading signing certificate: %w", err)
		}
		block, _ := pem.Decode(raw)
		if block == nil {
			problems = append(problems, fmt.Sprintf("signing certificate %s is not a PEM CERTIFICATE", path))
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", nil, fmt.Errorf("parsing signing certificate %s: %w", path, err)
		}
		return path, cert, nil
	}
	return "", nil, errors.New(strings.Join(problems, "; "))
}

// loadMatchingKey scans the keystore for the key that belongs to pub.
// cryptogen names the file priv_sk and older tools <SKI>_sk; scanning by
// content instead of name accepts both and any hand-placed key.
func loadMatchingKey(dir string, pub *ecdsa.PublicKey, certPath string) (*ecdsa.PrivateKey, error) {
	names, err := regularFiles(dir)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s holds no private key", dir)
	}
	var problems []string
	for _, name := range names {
		path := filepath.Join(dir, name)
		key, err := readECKey(path)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if key.PublicKey.Equal(pub) {
			return key, nil
		}
		problems = append(problems, fmt.Sprintf("private key %s does not match the public key of certificate %s", path, certPath))
	}
	return nil, errors.New(strings.Join(problems, "; "))
}

func readECKey(path string) (*ecdsa.PrivateKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading private key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("private key %s is not PEM", path)
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing PKCS#8 private key %s: %w", path, err)
		}
		ec, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("private key %s is %T, want ECDSA", path, k)
		}
		return ec, nil
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing EC private key %s: %w", path, err)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("private key %s has PEM type %q, want PRIVATE KEY or EC PRIVATE KEY", path, block.Type)
	}
}

// regularFiles lists the non-hidden regular files of dir, sorted. Hidden
// entries are skipped because Kubernetes secret mounts put ..data links there.
func regularFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		info, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

// MSPID returns the MSP identifier the signer was loaded with.
func (s *Signer) MSPID() string { return s.mspID }

// Certificate returns the parsed signing certificate.
func (s *Signer) Certificate() *x509.Certificate { return s.cert }

// Serialize returns the marshalled SerializedIdentity used as the creator
// in signature headers. The certificate bytes are the file's exact PEM,
// because peers compare creators byte for byte.
func (s *Signer) Serialize() []byte {
	return bytes.Clone(s.serialized)
}

// Sign returns a DER ECDSA signature over SHA-256(msg) with S in the lower
// half of the group order. Fabric rejects high-S signatures to rule out
// malleability, so every signature we emit must be normalized.
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	digest := sha256.Sum256(msg)
	der, err := ecdsa.SignASN1(rand.Reader, s.key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("signing as %s: %w", s.mspID, err)
	}
	var sig ecdsaSignature
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil, fmt.Errorf("signing as %s: re-reading signature: %w", s.mspID, err)
	}
	if sig.S.Cmp(halfOrder(s.key.Curve)) <= 0 {
		return der, nil
	}
	sig.S.Sub(s.key.Curve.Params().N, sig.S)
	out, err := asn1.Marshal(sig)
	if err != nil {
		return nil, fmt.Errorf("signing as %s: encoding signature: %w", s.mspID, err)
	}
	return out, nil
}

// NewSignatureHeader returns a header carrying this identity and a fresh
// random nonce, ready to be marshalled into a payload or block metadata.
func (s *Signer) NewSignatureHeader() (*cb.SignatureHeader, error) {
	nonce := make([]byte, NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("generating nonce: %w", err)
	}
	return &cb.SignatureHeader{Creator: s.Serialize(), Nonce: nonce}, nil
}

type ecdsaSignature struct {
	R, S *big.Int
}
