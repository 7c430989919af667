package policy

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
)

// The fakes: an identity is written "MSPID/name[/role,role]" (e.g. "Org1MSP/alice/admin");
// its serialized form is a real msp.SerializedIdentity whose IdBytes hold "name/roles". A
// signature is SHA-256 over MSP ID, name and data, so tests can forge bad ones at will.

type fakeIdentity struct {
	msp, name string
	roles     map[mspproto.MSPRole_MSPRoleType]bool
	verifies  *atomic.Int64
}

func (f *fakeIdentity) MSPID() string   { return f.msp }
func (f *fakeIdentity) Key() string     { return f.msp + "\x00" + f.name }
func (f *fakeIdentity) Validate() error { return nil }
func (f *fakeIdentity) ExpiresAt() time.Time {
	return time.Time{}
}

func (f *fakeIdentity) Verify(msg, sig []byte) error {
	if f.verifies != nil {
		f.verifies.Add(1)
	}
	if !bytes.Equal(sig, fakeSign(f.msp, f.name, msg)) {
		return errors.New("signature mismatch")
	}
	return nil
}

func (f *fakeIdentity) SatisfiesPrincipal(p *mspproto.MSPPrincipal) error {
	if p.PrincipalClassification != mspproto.MSPPrincipal_ROLE {
		return fmt.Errorf("unsupported principal %s", p.PrincipalClassification)
	}
	role := &mspproto.MSPRole{}
	if err := proto.Unmarshal(p.Principal, role); err != nil {
		return err
	}
	if role.MspIdentifier != f.msp {
		return fmt.Errorf("identity of %s, principal of %s", f.msp, role.MspIdentifier)
	}
	if role.Role == mspproto.MSPRole_MEMBER || f.roles[role.Role] {
		return nil
	}
	return fmt.Errorf("not %s", role.Role)
}

func fakeSign(msp, name string, data []byte) []byte {
	h := sha256.New()
	h.Write([]byte(msp + "\x00" + name + "\x00"))
	h.Write(data)
	return h.Sum(nil)
}

// fakeMSPs deserializes identities of the MSPs it lists.
type fakeMSPs struct {
	known    map[string]bool
	verifies atomic.Int64
}

func newFakeMSPs(ids ...string) *fakeMSPs {
	m := &fakeMSPs{known: map[string]bool{}}
	for _, id := range ids {
		m.known[id] = true
	}
	return m
}

func (m *fakeMSPs) DeserializeIdentity(serialized []byte) (Identity, error) {
	sid := &mspproto.SerializedIdentity{}
	if err := proto.Unmarshal(serialized, sid); err != nil {
		return nil, fmt.Errorf("bad serialized identity: %w", err)
	}
	if !m.known[sid.Mspid] {
		return nil, fmt.Errorf("unknown MSP %q", sid.Mspid)
	}
	name, roles, _ := strings.Cut(string(sid.IdBytes), "/")
	id := &fakeIdentity{msp: sid.Mspid, name: name, roles: map[mspproto.MSPRole_MSPRoleType]bool{}, verifies: &m.verifies}
	for _, r := range strings.Split(roles, ",") {
		if r == "" {
			continue
		}
		v, ok := mspproto.MSPRole_MSPRoleType_value[strings.ToUpper(r)]
		if !ok {
			return nil, fmt.Errorf("bad role %q", r)
		}
		id.roles[mspproto.MSPRole_MSPRoleType(v)] = true
	}
	return id, nil
}

var testData = []byte("the signed message")

func serialize(spec string) []byte {
	msp, rest, _ := strings.Cut(spec, "/")
	b, err := proto.Marshal(&mspproto.SerializedIdentity{Mspid: msp, IdBytes: []byte(rest)})
	if err != nil {
		panic(err)
	}
	return b
}

// good is a valid signature of testData by spec.
func good(spec string) *SignedData {
	msp, rest, _ := strings.Cut(spec, "/")
	name, _, _ := strings.Cut(rest, "/")
	return &SignedData{Data: testData, Identity: serialize(spec), Signature: fakeSign(msp, name, testData)}
}

// bad is an invalid signature by spec.
func bad(spec string) *SignedData {
	sd := good(spec)
	sd.Signature = []byte("forged")
	return sd
}

func sigs(specs ...string) []*SignedData {
	out := make([]*SignedData, len(specs))
	for i, s := range specs {
		out[i] = good(s)
	}
	return out
}

func mustDSL(t testing.TB, s string) *cb.SignaturePolicyEnvelope {
	t.Helper()
	env, err := ParseDSL(s)
	if err != nil {
		t.Fatalf("ParseDSL(%q): %v", s, err)
	}
	return env
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sigPolicy is a SIGNATURE config policy from the DSL.
func sigPolicy(t testing.TB, dsl string) *cb.ConfigPolicy {
	return &cb.ConfigPolicy{Policy: &cb.Policy{Type: int32(cb.Policy_SIGNATURE), Value: mustMarshal(t, mustDSL(t, dsl))}}
}

// metaPolicy is an IMPLICIT_META config policy, "ANY Writers".
func metaPolicy(t testing.TB, rule string) *cb.ConfigPolicy {
	t.Helper()
	imp, err := ParseImplicitMeta(rule)
	if err != nil {
		t.Fatal(err)
	}
	return &cb.ConfigPolicy{Policy: &cb.Policy{Type: int32(cb.Policy_IMPLICIT_META), Value: mustMarshal(t, imp)}}
}

// orgGroup is an organisation group with Readers/Writers (member), Admins (admin), Endorsement (peer).
func orgGroup(t testing.TB, msp string) *cb.ConfigGroup {
	return &cb.ConfigGroup{Policies: map[string]*cb.ConfigPolicy{
		"Readers":     sigPolicy(t, "OR('"+msp+".member')"),
		"Writers":     sigPolicy(t, "OR('"+msp+".member')"),
		"Admins":      sigPolicy(t, "OR('"+msp+".admin')"),
		"Endorsement": sigPolicy(t, "OR('"+msp+".peer')"),
	}}
}

func standardMeta(t testing.TB) map[string]*cb.ConfigPolicy {
	return map[string]*cb.ConfigPolicy{
		"Readers": metaPolicy(t, "ANY Readers"),
		"Writers": metaPolicy(t, "ANY Writers"),
		"Admins":  metaPolicy(t, "MAJORITY Admins"),
	}
}

// appChannel is the config tree of a typical application channel: an orderer org and two
// application orgs, configtxgen's default policies.
func appChannel(t testing.TB) *cb.ConfigGroup {
	orderer := &cb.ConfigGroup{
		Groups:   map[string]*cb.ConfigGroup{"OrdererOrg": orgGroup(t, "OrdererMSP")},
		Policies: standardMeta(t),
	}
	orderer.Policies["BlockValidation"] = metaPolicy(t, "ANY Writers")
	app := &cb.ConfigGroup{
		Groups: map[string]*cb.ConfigGroup{
			"Org1MSP": orgGroup(t, "Org1MSP"),
			"Org2MSP": orgGroup(t, "Org2MSP"),
		},
		Policies: standardMeta(t),
	}
	app.Policies["Endorsement"] = metaPolicy(t, "MAJORITY Endorsement")
	return &cb.ConfigGroup{
		Groups:   map[string]*cb.ConfigGroup{"Orderer": orderer, "Application": app},
		Policies: standardMeta(t),
	}
}
