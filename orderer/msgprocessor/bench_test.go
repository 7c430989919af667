package msgprocessor

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"

	"github.com/kordhq/kord/orderer/channelconfig"
	"github.com/kordhq/kord/orderer/client"
	"github.com/kordhq/kord/orderer/genesis"
	"github.com/kordhq/kord/orderer/msp"
	"github.com/kordhq/kord/orderer/msp/mspgen"
)

// benchTxSize is the data of the benchmarked envelopes: a typical endorser transaction.
const benchTxSize = 2048

// realChannel is an application channel created the way Fabric creates one: a system
// channel genesis block as configtxgen makes it (the orderer organization, Org1 and Org2 with
// NodeOUs, Fabric's sample policies) and a channel-creation request signed by Org1's admin,
// turned into the new channel's config by ProcessChannelCreation. Its MSPs and policies are
// the real ones channelconfig builds. It returns the config and an ENDORSER_TRANSACTION of
// txSize bytes signed by Org1's User1.
func realChannel(tb testing.TB, txSize int) (*channelconfig.Values, *cb.Envelope) {
	tb.Helper()
	dir := tb.TempDir()
	spec := mspgen.DefaultSpec()
	if err := mspgen.Generate(dir, spec); err != nil {
		tb.Fatal(err)
	}
	p := genesis.DevProfile(dir, spec, []string{"127.0.0.1:9092"}, []string{"127.0.0.1:7050"})
	blk, err := genesis.SystemChannelBlock(p)
	if err != nil {
		tb.Fatal(err)
	}
	sys, err := channelconfig.FromBlock(blk)
	if err != nil {
		tb.Fatal(err)
	}
	load := func(mspDir, mspID string) *msp.Signer {
		s, err := msp.LoadSigner(mspDir, mspID)
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
	ord, org := spec.OrdererOrgs[0], spec.PeerOrgs[0]
	ordDir, orgDir := mspgen.OrdererOrgDir(dir, ord.Domain), mspgen.PeerOrgDir(dir, org.Domain)
	orderer := load(mspgen.OrdererMSPDir(ordDir, ord.Domain, ord.Nodes[0]), ord.MSPID)
	admin := load(mspgen.UserMSPDir(orgDir, org.Domain, mspgen.AdminUser), org.MSPID)
	user := load(mspgen.UserMSPDir(orgDir, org.Domain, "User1"), org.MSPID)

	tx, err := genesis.ChannelCreateTx(p, "bench")
	if err != nil {
		tb.Fatal(err)
	}
	req, err := client.SignConfigUpdate(tx, admin)
	if err != nil {
		tb.Fatal(err)
	}
	ordererTx, err := (&Processor{Signer: orderer}).ProcessChannelCreation(sys, req, 1)
	if err != nil {
		tb.Fatal(err)
	}
	payload := &cb.Payload{}
	if err := proto.Unmarshal(ordererTx.Payload, payload); err != nil {
		tb.Fatal(err)
	}
	inner := &cb.Envelope{}
	if err := proto.Unmarshal(payload.Data, inner); err != nil {
		tb.Fatal(err)
	}
	cfg, err := channelconfig.FromEnvelope(inner)
	if err != nil {
		tb.Fatal(err)
	}
	env, err := client.Envelope(user, cb.HeaderType_ENDORSER_TRANSACTION, "bench", make([]byte, txSize))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg, env
}

func benchChannel(b *testing.B) (*channelconfig.Values, *cb.Envelope) {
	b.Helper()
	return realChannel(b, benchTxSize)
}

// bareVerify is the least any signature check costs: SHA-256 of the payload and one P-256
// ECDSA verification with a key already at hand.
func bareVerify(b *testing.B, env *cb.Envelope) (*ecdsa.PublicKey, []byte) {
	b.Helper()
	payload := &cb.Payload{}
	if err := proto.Unmarshal(env.Payload, payload); err != nil {
		b.Fatal(err)
	}
	shdr := &cb.SignatureHeader{}
	if err := proto.Unmarshal(payload.Header.SignatureHeader, shdr); err != nil {
		b.Fatal(err)
	}
	sid := &mspproto.SerializedIdentity{}
	if err := proto.Unmarshal(shdr.Creator, sid); err != nil {
		b.Fatal(err)
	}
	block, _ := pem.Decode(sid.IdBytes)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		b.Fatal(err)
	}
	return cert.PublicKey.(*ecdsa.PublicKey), env.Payload
}

// BenchmarkBareVerify is one ECDSA P-256 verification of an envelope's signature, hashing
// included: the yardstick of BenchmarkFilterChain.
func BenchmarkBareVerify(b *testing.B) {
	_, env := benchChannel(b)
	pub, msg := bareVerify(b, env)
	b.ReportAllocs()
	for b.Loop() {
		h := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(pub, h[:], env.Signature) {
			b.Fatal("signature does not verify")
		}
	}
}

// BenchmarkFilterChain is what Broadcast spends on one envelope before handing it to Kafka:
// Parse (envelope, payload, headers) and Check under a real channel config (size, expiry,
// /Channel/Writers: identity from the MSP manager, NodeOU principals, signature). Issue 7
// wants it within 1.3x of BenchmarkBareVerify.
func BenchmarkFilterChain(b *testing.B) {
	cfg, env := benchChannel(b)
	p := &Processor{}
	if err := p.ValidateNormal(cfg, env); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		parsed, err := Parse(env)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Check(cfg, env, parsed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFilterChainParallel runs the filter chain on every core, as Broadcast validates
// the envelopes of its streams: ns/op falls with the number of cores when validation shares
// nothing contended.
func BenchmarkFilterChainParallel(b *testing.B) {
	cfg, env := benchChannel(b)
	p := &Processor{}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			parsed, err := Parse(env)
			if err != nil {
				b.Error(err)
				return
			}
			if err := p.Check(cfg, env, parsed); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkBareVerifyParallel is BenchmarkBareVerify on every core, for the ratio of the
// parallel filter chain.
func BenchmarkBareVerifyParallel(b *testing.B) {
	_, env := benchChannel(b)
	pub, msg := bareVerify(b, env)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h := sha256.Sum256(msg)
			if !ecdsa.VerifyASN1(pub, h[:], env.Signature) {
				b.Error("signature does not verify")
				return
			}
		}
	})
}

// BenchmarkFilterChainRatio alternates one bare verification and one pass of the filter chain
// over the same envelope and reports the ratio of their medians ("chain/verify") and of their
// fastest runs ("min-chain/verify"): measured side by side, per run, the ratio holds on a
// shared machine whose load changes during the benchmark, where two separate benchmarks would
// each see a different machine.
func BenchmarkFilterChainRatio(b *testing.B) {
	cfg, env := benchChannel(b)
	pub, msg := bareVerify(b, env)
	p := &Processor{}
	var bare, chain []time.Duration
	for b.Loop() {
		t0 := time.Now()
		h := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(pub, h[:], env.Signature) {
			b.Fatal("signature does not verify")
		}
		t1 := time.Now()
		parsed, err := Parse(env)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Check(cfg, env, parsed); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		bare = append(bare, t1.Sub(t0))
		chain = append(chain, t2.Sub(t1))
	}
	slices.Sort(bare)
	slices.Sort(chain)
	mb, mc := bare[len(bare)/2], chain[len(chain)/2]
	b.ReportMetric(float64(mb.Nanoseconds()), "verify-median-ns")
	b.ReportMetric(float64(mc.Nanoseconds()), "chain-median-ns")
	b.ReportMetric(float64(mc)/float64(mb), "chain/verify")
	b.ReportMetric(float64(chain[0])/float64(bare[0]), "min-chain/verify")
}
