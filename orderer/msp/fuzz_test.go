package msp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"math"
	"testing"
	"time"

	mspproto "github.com/hyperledger/fabric-protos-go/msp"

	"github.com/kordhq/kord/orderer/msp/msptest"
)

// fuzzManager is a channel of two organizations, one with an intermediate CA, a CRL and
// NodeOUs, the other with explicit admins and an OU identifier.
func fuzzManager(tb testing.TB) (*Manager, *msptest.Org, *msptest.Org) {
	org1 := msptest.NewOrgWithIntermediate(tb, "Org1MSP")
	org2 := msptest.NewOrg(tb, "Org2MSP")
	m1, err := New(org1.MSPConfig(true))
	if err != nil {
		tb.Fatal(err)
	}
	fc2 := org2.FabricConfig(false)
	fc2.OrganizationalUnitIdentifiers = []*mspproto.FabricOUIdentifier{{Certificate: org2.Root.CertPEM, OrganizationalUnitIdentifier: msptest.OUAdmin}}
	m2, err := New(msptest.Wrap(fc2))
	if err != nil {
		tb.Fatal(err)
	}
	mg, err := NewManager(m1, m2)
	if err != nil {
		tb.Fatal(err)
	}
	mg.cache = newIDCache(8)
	return mg, org1, org2
}

func fuzzPrincipals(org1, org2 *msptest.Org) []*mspproto.MSPPrincipal {
	var ps []*mspproto.MSPPrincipal
	for _, id := range []string{"Org1MSP", "Org2MSP"} {
		for r := range 5 {
			ps = append(ps, msptest.RolePrincipal(id, mspproto.MSPRole_MSPRoleType(r)))
		}
	}
	return append(ps,
		msptest.OUPrincipal("Org1MSP", msptest.OUClient, msptest.Certifiers(org1.CA.Cert, org1.Root.Cert)),
		msptest.IdentityPrincipal(org1.Client),
		msptest.IdentityPrincipal(org2.Admin),
		msptest.AnonymityPrincipal(mspproto.MSPIdentityAnonymity_NOMINAL),
		msptest.CombinedPrincipal(msptest.RolePrincipal("Org1MSP", mspproto.MSPRole_MEMBER), msptest.RolePrincipal("Org1MSP", mspproto.MSPRole_CLIENT)),
	)
}

// FuzzDeserializeIdentity feeds untrusted SerializedIdentity bytes (an envelope's
// creator) through the whole identity API: nothing may panic.
func FuzzDeserializeIdentity(f *testing.F) {
	mg, org1, org2 := fuzzManager(f)
	principals := fuzzPrincipals(org1, org2)
	msg := []byte("payload")
	sig := org1.Client.Sign(msg)
	for _, id := range []*msptest.Identity{org1.Client, org1.Admin, org1.Revoked, org1.Expired, org2.Admin, org2.Member} {
		f.Add(id.Serialize())
	}
	f.Add(msptest.Serialized("Org1MSP", msptest.HighSCertPEM(f, org1.Client.Cert, org1.CA)))
	f.Add(msptest.Serialized("Org1MSP", org1.Root.CertPEM))
	f.Add(msptest.Serialized("Org1MSP", bytes.Repeat([]byte("-----BEGIN CERTIFICATE-----\n"), 3)))
	f.Add(org1.Client.SerializeAs("Org2MSP"))
	f.Add([]byte{})
	f.Add([]byte("\x0a\x07Org1MSP\x12\x05-----"))
	f.Fuzz(func(t *testing.T, serialized []byte) {
		id, err := mg.DeserializeIdentity(serialized)
		if err != nil {
			if id != nil {
				t.Fatal("identity returned with an error")
			}
			return
		}
		_ = id.Validate()
		_ = id.Key()
		_ = id.ExpiresAt()
		_ = id.Verify(msg, sig)
		for _, p := range principals {
			_ = id.SatisfiesPrincipal(p)
		}
	})
}

// FuzzSatisfiesPrincipal feeds untrusted principals (from a policy in a config update)
// to valid identities.
func FuzzSatisfiesPrincipal(f *testing.F) {
	mg, org1, org2 := fuzzManager(f)
	var ids []*X509Identity
	for _, sid := range []*msptest.Identity{org1.Client, org1.Admin, org2.Admin} {
		id, err := mg.Deserialize(sid.Serialize())
		if err != nil {
			f.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, p := range fuzzPrincipals(org1, org2) {
		f.Add(int32(p.PrincipalClassification), p.Principal)
	}
	f.Add(int32(4), []byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, class int32, principal []byte) {
		p := &mspproto.MSPPrincipal{PrincipalClassification: mspproto.MSPPrincipal_Classification(class), Principal: principal}
		for _, id := range ids {
			_ = id.SatisfiesPrincipal(p)
		}
	})
}

// BenchmarkManagerDeserializeValidateVerify is the per-envelope MSP cost once the
// creator is cached: lookup, cached validation, signature verification. Compare with
// BenchmarkVerifyBareECDSA (same message size).
func BenchmarkManagerDeserializeValidateVerify(b *testing.B) {
	mg, org1, _ := fuzzManager(b)
	mg.cache = newIDCache(DefaultCacheSize)
	msg := bytes.Repeat([]byte{7}, 1500)
	sig := org1.Client.Sign(msg)
	creator := org1.Client.Serialize()
	b.ReportAllocs()
	for b.Loop() {
		id, err := mg.DeserializeIdentity(creator)
		if err != nil {
			b.Fatal(err)
		}
		if err := id.Validate(); err != nil {
			b.Fatal(err)
		}
		if err := id.Verify(msg, sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSatisfiesPrincipal is one ROLE principal check of a cached identity.
func BenchmarkSatisfiesPrincipal(b *testing.B) {
	mg, org1, _ := fuzzManager(b)
	id, err := mg.DeserializeIdentity(org1.Client.Serialize())
	if err != nil {
		b.Fatal(err)
	}
	p := msptest.RolePrincipal("Org1MSP", mspproto.MSPRole_CLIENT)
	b.ReportAllocs()
	for b.Loop() {
		if err := id.SatisfiesPrincipal(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeserializeUncached is the cost of a first sight of a creator: parsing, chain
// building, validation.
func BenchmarkDeserializeUncached(b *testing.B) {
	mg, org1, _ := fuzzManager(b)
	m, _ := mg.MSP("Org1MSP")
	creator := org1.Client.Serialize()
	b.ReportAllocs()
	for b.Loop() {
		id, err := m.DeserializeIdentity(creator)
		if err != nil {
			b.Fatal(err)
		}
		if err := id.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMSPOverheadRatio alternates short runs of a bare P-256 verification and of the
// cached Manager path over the same message and reports the fastest run of each and their
// ratio. Taking the minimum of interleaved runs keeps the ratio meaningful on a shared,
// noisy machine, where separate benchmarks can be minutes and loads apart.
func BenchmarkMSPOverheadRatio(b *testing.B) {
	mg, org1, _ := fuzzManager(b)
	msg := bytes.Repeat([]byte{7}, 1500)
	sig := org1.Client.Sign(msg)
	creator := org1.Client.Serialize()
	pub := &org1.Client.Key.PublicKey
	full := func() {
		id, err := mg.DeserializeIdentity(creator)
		if err != nil {
			b.Fatal(err)
		}
		if err := id.Validate(); err != nil {
			b.Fatal(err)
		}
		if err := id.Verify(msg, sig); err != nil {
			b.Fatal(err)
		}
	}
	bare := func() {
		d := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(pub, d[:], sig) {
			b.Fatal("verify failed")
		}
	}
	const chunk = 20
	bestBare, bestFull := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	for b.Loop() {
		for _, run := range []struct {
			f    func()
			best *time.Duration
		}{{bare, &bestBare}, {full, &bestFull}} {
			start := time.Now()
			for range chunk {
				run.f()
			}
			*run.best = min(*run.best, time.Since(start)/chunk)
		}
	}
	b.ReportMetric(float64(bestBare.Nanoseconds()), "bare-ns/verify")
	b.ReportMetric(float64(bestFull.Nanoseconds()), "msp-ns/verify")
	b.ReportMetric(float64(bestFull)/float64(bestBare), "ratio")
}
