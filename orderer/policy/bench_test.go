package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
)

// ecdsaIdentity verifies like a Fabric X.509 identity: SHA-256 then P-256 ECDSA over the
// ASN.1 signature. Principal matching unmarshals the MSPRole each time, as an MSP does.
type ecdsaIdentity struct {
	msp      string
	pub      *ecdsa.PublicKey
	noVerify bool // for measuring the policy alone
}

func (e *ecdsaIdentity) MSPID() string        { return e.msp }
func (e *ecdsaIdentity) Key() string          { return e.msp + "\x00" + e.pub.X.String() }
func (e *ecdsaIdentity) Validate() error      { return nil }
func (e *ecdsaIdentity) ExpiresAt() time.Time { return time.Time{} }

func (e *ecdsaIdentity) Verify(msg, sig []byte) error {
	if e.noVerify {
		return nil
	}
	h := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(e.pub, h[:], sig) {
		return errors.New("invalid ECDSA signature")
	}
	return nil
}

func (e *ecdsaIdentity) SatisfiesPrincipal(p *mspproto.MSPPrincipal) error {
	role := &mspproto.MSPRole{}
	if err := proto.Unmarshal(p.Principal, role); err != nil {
		return err
	}
	if role.MspIdentifier != e.msp || role.Role != mspproto.MSPRole_MEMBER {
		return fmt.Errorf("not a member of %s", role.MspIdentifier)
	}
	return nil
}

// ecdsaMSPs stands for an MSP with a cache of deserialized identities: a map lookup.
type ecdsaMSPs map[string]Identity

func (m ecdsaMSPs) DeserializeIdentity(b []byte) (Identity, error) {
	if id, ok := m[string(b)]; ok {
		return id, nil
	}
	return nil, errors.New("unknown identity")
}

func ecdsaSigner(b *testing.B, msp string, msps ecdsaMSPs, msg []byte) *SignedData {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
	if err != nil {
		b.Fatal(err)
	}
	serialized := serialize(msp + "/" + msp + "-user")
	msps[string(serialized)] = &ecdsaIdentity{msp: msp, pub: &key.PublicKey}
	return &SignedData{Data: msg, Identity: serialized, Signature: sig}
}

func BenchmarkBareECDSAVerify(b *testing.B) {
	msps := ecdsaMSPs{}
	msg := make([]byte, 2048)
	sd := ecdsaSigner(b, "Org2MSP", msps, msg)
	id := msps[string(sd.Identity)]
	b.ReportAllocs()
	for b.Loop() {
		if err := id.Verify(sd.Data, sd.Signature); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluateWriters evaluates /Channel/Writers of an application channel (ANY of
// Application and Orderer Writers; Application Writers = ANY of two orgs' OR(member)) for a
// client of the second org: the policy visits three signature leaves and verifies once.
func BenchmarkEvaluateWriters(b *testing.B) {
	msps := ecdsaMSPs{}
	msg := make([]byte, 2048)
	signer := ecdsaSigner(b, "Org2MSP", msps, msg)
	tree, err := NewManager(appChannel(b), msps)
	if err != nil {
		b.Fatal(err)
	}
	p, ok := tree.GetPolicy(ChannelWriters)
	if !ok {
		b.Fatal("no /Channel/Writers")
	}
	b.Run("accepted", func(b *testing.B) {
		set := []*SignedData{signer}
		b.ReportAllocs()
		for b.Loop() {
			if err := p.EvaluateSignedData(set); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The same evaluation with a free Verify: what the policy itself costs.
	b.Run("policy-only", func(b *testing.B) {
		free := *msps[string(signer.Identity)].(*ecdsaIdentity)
		free.noVerify = true
		freeMSPs := ecdsaMSPs{string(signer.Identity): &free}
		tree, err := NewManager(appChannel(b), freeMSPs)
		if err != nil {
			b.Fatal(err)
		}
		p, _ := tree.GetPolicy(ChannelWriters)
		set := []*SignedData{signer}
		b.ReportAllocs()
		for b.Loop() {
			if err := p.EvaluateSignedData(set); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rejected", func(b *testing.B) {
		outsider := *signer
		outsider.Identity = serialize("Org9MSP/x")
		set := []*SignedData{&outsider}
		b.ReportAllocs()
		for b.Loop() {
			if err := p.EvaluateSignedData(set); err == nil {
				b.Fatal("outsider accepted")
			}
		}
	})
}
