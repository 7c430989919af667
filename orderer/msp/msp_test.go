package msp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/golang/protobuf/proto"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"

	"github.com/kordhq/kord/orderer/msp/mspgen"
	"github.com/kordhq/kord/orderer/msp/p256"
)

var (
	treeOnce sync.Once
	treeDir  string
	treeErr  error
)

// sharedTree generates one default crypto tree for the whole test binary;
// tests that modify files copy what they need first.
func sharedTree(tb testing.TB) string {
	tb.Helper()
	treeOnce.Do(func() {
		treeDir, treeErr = os.MkdirTemp("", "kord-msp-test-")
		if treeErr == nil {
			treeErr = mspgen.Generate(treeDir, mspgen.DefaultSpec())
		}
	})
	if treeErr != nil {
		tb.Fatalf("generating crypto tree: %v", treeErr)
	}
	return treeDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if treeDir != "" {
		os.RemoveAll(treeDir)
	}
	os.Exit(code)
}

func userMSP(tb testing.TB, domain, user string) string {
	return mspgen.UserMSPDir(mspgen.PeerOrgDir(sharedTree(tb), domain), domain, user)
}

func loadUser(tb testing.TB, domain, mspID, user string) *Signer {
	tb.Helper()
	s, err := LoadSigner(userMSP(tb, domain, user), mspID)
	if err != nil {
		tb.Fatalf("LoadSigner: %v", err)
	}
	return s
}

func TestLoadSignerAndSerialize(t *testing.T) {
	dir := userMSP(t, "org1.example.com", "User1")
	s := loadUser(t, "org1.example.com", "Org1MSP", "User1")
	if s.MSPID() != "Org1MSP" {
		t.Fatalf("MSPID = %q", s.MSPID())
	}
	if got := s.Certificate().Subject.CommonName; got != "User1@org1.example.com" {
		t.Fatalf("CN = %q", got)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "signcerts", "User1@org1.example.com-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	fileCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var sid mspproto.SerializedIdentity
	if err := proto.Unmarshal(s.Serialize(), &sid); err != nil {
		t.Fatal(err)
	}
	if sid.Mspid != "Org1MSP" {
		t.Fatalf("MSP ID = %q", sid.Mspid)
	}
	// The creator is the PEM of the certificate with its CA signature in low-S form, as a
	// Fabric node serializes itself: the same file bytes when the signature already is.
	block, rest := pem.Decode(sid.IdBytes)
	if block == nil || len(rest) != 0 {
		t.Fatal("creator is not one PEM block")
	}
	got, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.RawTBSCertificate, fileCert.RawTBSCertificate) {
		t.Fatal("creator is not the signing certificate")
	}
	var sig ecdsaSignature
	if _, err := asn1.Unmarshal(got.Signature, &sig); err != nil {
		t.Fatal(err)
	}
	if sig.S.Cmp(halfOrder(elliptic.P256())) > 0 {
		t.Fatal("creator certificate keeps a high-S CA signature")
	}
	var fileSig ecdsaSignature
	if _, err := asn1.Unmarshal(fileCert.Signature, &fileSig); err != nil {
		t.Fatal(err)
	}
	if fileSig.S.Cmp(halfOrder(elliptic.P256())) <= 0 && !bytes.Equal(sid.IdBytes, raw) {
		t.Fatal("creator differs from a canonical certificate file")
	}
}

func TestSignIsLowSAndVerifies(t *testing.T) {
	s := loadUser(t, "org1.example.com", "Org1MSP", "User1")
	v := NewSignatureVerifier(0)
	half := new(big.Int).Rsh(elliptic.P256().Params().N, 1)
	for i := range 200 {
		msg := []byte{byte(i), 'x'}
		sig, err := s.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		var parsed ecdsaSignature
		if _, err := asn1.Unmarshal(sig, &parsed); err != nil {
			t.Fatal(err)
		}
		if parsed.S.Cmp(half) > 0 {
			t.Fatalf("signature %d has high S", i)
		}
		if err := v.Verify(s.Serialize(), msg, sig); err != nil {
			t.Fatalf("signature %d: %v", i, err)
		}
	}
}

func TestNewSignatureHeader(t *testing.T) {
	s := loadUser(t, "org1.example.com", "Org1MSP", "User1")
	h1, err := s.NewSignatureHeader()
	if err != nil {
		t.Fatal(err)
	}
	h2, err := s.NewSignatureHeader()
	if err != nil {
		t.Fatal(err)
	}
	if len(h1.Nonce) != NonceSize || bytes.Equal(h1.Nonce, h2.Nonce) {
		t.Fatalf("nonces: %x %x", h1.Nonce, h2.Nonce)
	}
	if !bytes.Equal(h1.Creator, s.Serialize()) {
		t.Fatal("creator differs from Serialize()")
	}
}

// copyMSP copies a local MSP dir so a test can break it.
func copyMSP(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "msp")
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestLoadSignerKeyFormats(t *testing.T) {
	src := userMSP(t, "org1.example.com", "User1")

	t.Run("EC PRIVATE KEY named by SKI", func(t *testing.T) {
		dir := copyMSP(t, src)
		keyPath := filepath.Join(dir, "keystore", "priv_sk")
		raw, _ := os.ReadFile(keyPath)
		block, _ := pem.Decode(raw)
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		sec1, err := x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(keyPath)
		newPath := filepath.Join(dir, "keystore", "0123abcd_sk")
		if err := os.WriteFile(newPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadSigner(dir, "Org1MSP"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLoadSignerErrors(t *testing.T) {
	src := userMSP(t, "org1.example.com", "User1")
	other := userMSP(t, "org2.example.com", "User1")

	cases := []struct {
		name    string
		prepare func(dir string)
		want    string
	}{
		{"missing dir", func(dir string) { os.RemoveAll(dir) }, "msp"},
		{"no signcerts", func(dir string) { os.RemoveAll(filepath.Join(dir, "signcerts")) }, "signcerts"},
		{"no keystore", func(dir string) { os.RemoveAll(filepath.Join(dir, "keystore")) }, "keystore"},
		{"empty keystore", func(dir string) { os.Remove(filepath.Join(dir, "keystore", "priv_sk")) }, "holds no private key"},
		{"no cacerts", func(dir string) { os.RemoveAll(filepath.Join(dir, "cacerts")) }, "cacerts"},
		{"key of another identity", func(dir string) {
			data, _ := os.ReadFile(filepath.Join(other, "keystore", "priv_sk"))
			os.WriteFile(filepath.Join(dir, "keystore", "priv_sk"), data, 0o600)
		}, "keystore/priv_sk does not match"},
		{"key not PEM", func(dir string) {
			os.WriteFile(filepath.Join(dir, "keystore", "priv_sk"), []byte("nope"), 0o600)
		}, "priv_sk is not PEM"},
		{"cert not PEM", func(dir string) {
			os.WriteFile(filepath.Join(dir, "signcerts", "User1@org1.example.com-cert.pem"), []byte("nope"), 0o600)
		}, "User1@org1.example.com-cert.pem is not a PEM CERTIFICATE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyMSP(t, src)
			tc.prepare(dir)
			_, err := LoadSigner(dir, "Org1MSP")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if _, err := LoadSigner(src, ""); err == nil {
		t.Fatal("empty MSP ID accepted")
	}
}

func highS(t testing.TB, sig []byte) []byte {
	var parsed ecdsaSignature
	if _, err := asn1.Unmarshal(sig, &parsed); err != nil {
		t.Fatal(err)
	}
	parsed.S.Sub(elliptic.P256().Params().N, parsed.S)
	out, err := asn1.Marshal(parsed)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerify(t *testing.T) {
	user1 := loadUser(t, "org1.example.com", "Org1MSP", "User1")
	user2 := loadUser(t, "org2.example.com", "Org2MSP", "User1")
	msg := []byte("an envelope payload")
	good, err := user1.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	otherSig, err := user2.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	notPEM, _ := proto.Marshal(&mspproto.SerializedIdentity{Mspid: "Org1MSP", IdBytes: []byte("not a cert")})
	keyPEM, _ := proto.Marshal(&mspproto.SerializedIdentity{Mspid: "Org1MSP", IdBytes: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})})
	badDER, _ := proto.Marshal(&mspproto.SerializedIdentity{Mspid: "Org1MSP", IdBytes: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}})})
	noMSP, _ := proto.Marshal(&mspproto.SerializedIdentity{IdBytes: user1.certPEM})
	zeroR, _ := asn1.Marshal(ecdsaSignature{R: big.NewInt(0), S: big.NewInt(1)})

	cases := []struct {
		name         string
		creator, sig []byte
		msg          []byte
		want         string
	}{
		{"good", user1.Serialize(), good, msg, ""},
		{"high S refused", user1.Serialize(), highS(t, good), msg, "high S"},
		{"wrong key", user1.Serialize(), otherSig, msg, "signature does not verify for identity Org1MSP/CN=User1@org1.example.com"},
		{"other message", user1.Serialize(), good, []byte("tampered"), "does not verify"},
		{"garbage creator", []byte{0xff, 0xff, 0xff}, good, msg, "creator is not a serialized identity"},
		{"empty creator", nil, good, msg, "creator is empty"},
		{"creator without MSP ID", noMSP, good, msg, "no MSP ID"},
		{"creator cert not PEM", notPEM, good, msg, "creator certificate is not valid PEM"},
		{"creator PEM not a cert", keyPEM, good, msg, "not a CERTIFICATE"},
		{"creator cert not DER", badDER, good, msg, "does not parse"},
		{"garbage sig", user1.Serialize(), []byte("garbage"), msg, "not a DER-encoded ECDSA signature"},
		{"empty sig", user1.Serialize(), nil, msg, "signature is empty"},
		{"zero R", user1.Serialize(), zeroR, msg, "zero or negative"},
	}
	v := &SignatureVerifier{}
	// Once with crypto/ecdsa, once more after User1's key has signed often enough to be
	// verified with its precomputed table (package p256): the verdicts must not change.
	for _, round := range []string{"cold", "table"} {
		if round == "table" {
			for range p256.DefaultMinUses {
				if err := v.Verify(user1.Serialize(), msg, good); err != nil {
					t.Fatal(err)
				}
			}
			if keyTables.Tables() == 0 {
				t.Fatal("no key table after repeated verifications")
			}
		}
		for _, tc := range cases {
			t.Run(round+"/"+tc.name, func(t *testing.T) {
				err := v.Verify(tc.creator, tc.msg, tc.sig)
				if tc.want == "" {
					if err != nil {
						t.Fatalf("unexpected error: %v", err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.want)
				}
			})
		}
	}
}

func TestVerifyP384(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1)}
	tmpl.Subject.CommonName = "p384"
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	creator, _ := proto.Marshal(&mspproto.SerializedIdentity{Mspid: "X", IdBytes: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})})
	msg := []byte("m")
	digest := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	var parsed ecdsaSignature
	asn1.Unmarshal(sig, &parsed)
	if parsed.S.Cmp(new(big.Int).Rsh(elliptic.P384().Params().N, 1)) > 0 {
		parsed.S.Sub(elliptic.P384().Params().N, parsed.S)
		sig, _ = asn1.Marshal(parsed)
	}
	if err := (&SignatureVerifier{}).Verify(creator, msg, sig); err != nil {
		t.Fatal(err)
	}
}

func TestIdentityCacheIsBounded(t *testing.T) {
	v := NewSignatureVerifier(2)
	signers := []*Signer{
		loadUser(t, "org1.example.com", "Org1MSP", "User1"),
		loadUser(t, "org1.example.com", "Org1MSP", "Admin"),
		loadUser(t, "org2.example.com", "Org2MSP", "User1"),
		loadUser(t, "org2.example.com", "Org2MSP", "Admin"),
	}
	for _, s := range signers {
		sig, err := s.Sign([]byte("m"))
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(s.Serialize(), []byte("m"), sig); err != nil {
			t.Fatal(err)
		}
		if len(v.cache) > 2 {
			t.Fatalf("cache grew to %d entries", len(v.cache))
		}
	}
	// Concurrent use must be race-free (run with -race).
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func(s *Signer) {
			defer wg.Done()
			sig, _ := s.Sign([]byte("c"))
			if err := v.Verify(s.Serialize(), []byte("c"), sig); err != nil {
				t.Error(err)
			}
		}(signers[i%len(signers)])
	}
	wg.Wait()
}

func FuzzVerify(f *testing.F) {
	s := loadUser(f, "org1.example.com", "Org1MSP", "User1")
	msg := []byte("payload")
	sig, err := s.Sign(msg)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s.Serialize(), msg, sig)
	f.Add(s.Serialize(), msg, highS(f, sig))
	f.Add([]byte{}, []byte{}, []byte{})
	f.Add([]byte("\x0a\x07Org1MSP\x12\x05-----"), msg, []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	v := NewSignatureVerifier(16)
	f.Fuzz(func(t *testing.T, creator, msg, sig []byte) {
		// Only the absence of panics matters; most inputs are rejected.
		_ = v.Verify(creator, msg, sig)
	})
}

func BenchmarkVerify(b *testing.B) {
	s := loadUser(b, "org1.example.com", "Org1MSP", "User1")
	msg := bytes.Repeat([]byte{7}, 1500)
	sig, err := s.Sign(msg)
	if err != nil {
		b.Fatal(err)
	}
	creator := s.Serialize()
	v := NewSignatureVerifier(0)
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(creator, msg, sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyBareECDSA(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	msg := bytes.Repeat([]byte{7}, 1500)
	digest := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		d := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(&key.PublicKey, d[:], sig) {
			b.Fatal("verify failed")
		}
	}
}
