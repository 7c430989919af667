package policy

import (
	"strings"
	"testing"

	"github.com/golang/protobuf/proto"
	"github.com/hyperledger/fabric-config/configtx"
	cb "github.com/hyperledger/fabric-protos-go/common"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
)

// fabricDSL parses s with fabric-config's copy of Fabric's policy parser (govaluate based),
// reached through its public API.
func fabricDSL(s string) (*cb.SignaturePolicyEnvelope, error) {
	c := configtx.New(&cb.Config{ChannelGroup: &cb.ConfigGroup{}})
	if err := c.Channel().SetPolicy("P", configtx.Policy{Type: configtx.SignaturePolicyType, Rule: s}); err != nil {
		return nil, err
	}
	env := &cb.SignaturePolicyEnvelope{}
	if err := proto.Unmarshal(c.UpdatedConfig().ChannelGroup.Policies["P"].Policy.Value, env); err != nil {
		return nil, err
	}
	return env, nil
}

func role(msp string, r mspproto.MSPRole_MSPRoleType) *mspproto.MSPPrincipal {
	b, err := proto.Marshal(&mspproto.MSPRole{MspIdentifier: msp, Role: r})
	if err != nil {
		panic(err)
	}
	return &mspproto.MSPPrincipal{PrincipalClassification: mspproto.MSPPrincipal_ROLE, Principal: b}
}

func by(i int32) *cb.SignaturePolicy {
	return &cb.SignaturePolicy{Type: &cb.SignaturePolicy_SignedBy{SignedBy: i}}
}

func outOf(n int32, rules ...*cb.SignaturePolicy) *cb.SignaturePolicy {
	return &cb.SignaturePolicy{Type: &cb.SignaturePolicy_NOutOf_{NOutOf: &cb.SignaturePolicy_NOutOf{N: n, Rules: rules}}}
}

var dslCorpus = []string{
	"OR('A.member')",
	"AND('A.member', 'B.member')",
	"OutOf(1, 'A.member', 'B.member')",
	"OutOf('1', 'A.member', 'B.member')",
	"OutOf(0, 'A.member')",
	"OutOf(2, 'A.member')",
	"OR('A.member', AND('B.member', 'C.member'))",
	"OR(AND('A.member', 'B.member'), OR('C.admin', 'D.member'))",
	"OR('MSP.member', 'MSP.WITH.DOTS.member', 'MSP-WITH-DASHES.member')",
	"OR('A.peer', 'B.admin', 'C.orderer', 'D.client')",
	"and('A.member', or('B.admin', 'A.member'), outof(1, 'C.peer'))",
	`AND("A.member",OR( "B.admin" ) )`,
	"OUTOF(2, AND('A.member'), 'B.member', OR('C.member', 'C.member'), 'D.member')",
	"OR('Org1MSP.member', AND('Org2MSP.admin','Org3MSP.peer'))",
}

func TestParseDSLMatchesFabric(t *testing.T) {
	// Expected envelopes from Fabric's own parser tests.
	for s, want := range map[string]*cb.SignaturePolicyEnvelope{
		"OutOf(1, 'A.member', 'B.member')": {
			Rule:       outOf(1, by(0), by(1)),
			Identities: []*mspproto.MSPPrincipal{role("A", mspproto.MSPRole_MEMBER), role("B", mspproto.MSPRole_MEMBER)},
		},
		"OR('A.member', AND('B.member', 'C.member'))": {
			Rule:       outOf(1, by(2), outOf(2, by(0), by(1))),
			Identities: []*mspproto.MSPPrincipal{role("B", mspproto.MSPRole_MEMBER), role("C", mspproto.MSPRole_MEMBER), role("A", mspproto.MSPRole_MEMBER)},
		},
		"OR('A.peer', 'B.admin', 'C.orderer', 'D.client')": {
			Rule: outOf(1, by(0), by(1), by(2), by(3)),
			Identities: []*mspproto.MSPPrincipal{role("A", mspproto.MSPRole_PEER), role("B", mspproto.MSPRole_ADMIN),
				role("C", mspproto.MSPRole_ORDERER), role("D", mspproto.MSPRole_CLIENT)},
		},
		// Not de-duplicated.
		"AND('A.member', 'A.member')": {
			Rule:       outOf(2, by(0), by(1)),
			Identities: []*mspproto.MSPPrincipal{role("A", mspproto.MSPRole_MEMBER), role("A", mspproto.MSPRole_MEMBER)},
		},
	} {
		got, err := ParseDSL(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", s, got, want)
		}
	}
	for _, s := range dslCorpus {
		got, err := ParseDSL(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		want, err := fabricDSL(s)
		if err != nil {
			t.Fatalf("fabric %s: %v", s, err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", s, got, want)
		}
		gb, _ := proto.Marshal(got)
		wb, _ := proto.Marshal(want)
		if string(gb) != string(wb) {
			t.Errorf("%s: bytes differ from Fabric's", s)
		}
	}
}

func TestParseDSLErrors(t *testing.T) {
	for s, want := range map[string]string{
		"":                                 "expected AND, OR or OutOf",
		"OR()":                             "expected AND, OR or OutOf",
		"AND('A.member'":                   "expected ',' or ')' at end of input",
		"XOR('A.member')":                  `unknown gate "XOR"`,
		"Or('A.member') extra":             `unexpected "extra"`,
		"OR('A.member' 'B.member')":        "expected ',' or ')' at offset 14",
		"OR('Amember')":                    "is not MSPID.role",
		"OR('A.boss')":                     `unknown role "boss"`,
		"OR('A B.member')":                 "MSP ID may hold only",
		"OR('.member')":                    "is not MSPID.role",
		"OR('A.member)":                    "unterminated string",
		`OR('\'A.member')`:                 "escape sequences",
		"OutOf(1)":                         "has no principals",
		"OutOf(-1, 'A.member')":            "non-negative integer",
		"OutOf(x, 'A.member')":             "non-negative integer",
		"OutOf(3, 'A.member')":             "has only 1 arguments",
		"OutOf(99999999999999999999, 'A')": "too large",
		"OR(1, 'A.member')":                `unknown gate "1"`,
		"OR('A.member', 2)":                `unknown gate "2"`,
		strings.Repeat("OR(", 200) + "'A.member'" + strings.Repeat(")", 200): "nested deeper than",
	} {
		_, err := ParseDSL(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseDSL(%q) = %v, want %q", s, err, want)
		}
	}
}

func TestFormatDSL(t *testing.T) {
	for in, want := range map[string]string{
		"OR('A.member')":                              "OR('A.member')",
		"and('A.member', 'B.admin')":                  "AND('A.member', 'B.admin')",
		"OutOf(2, 'A.member', 'B.member', 'C.peer')":  "OutOf(2, 'A.member', 'B.member', 'C.peer')",
		"OR('A.member', AND('B.member', 'C.member'))": "OR('A.member', AND('B.member', 'C.member'))",
		"OutOf(0, 'A.member')":                        "OutOf(0, 'A.member')",
	} {
		env := mustDSL(t, in)
		got, err := FormatDSL(env)
		if err != nil || got != want {
			t.Errorf("FormatDSL(%s) = %q, %v, want %q", in, got, err, want)
		}
		again := mustDSL(t, got)
		if !proto.Equal(env, again) {
			t.Errorf("%s does not round-trip", in)
		}
	}
	ou := &mspproto.MSPPrincipal{PrincipalClassification: mspproto.MSPPrincipal_ORGANIZATION_UNIT,
		Principal: mustMarshal(t, &mspproto.OrganizationUnit{MspIdentifier: "A", OrganizationalUnitIdentifier: "sales"})}
	if _, err := FormatDSL(&cb.SignaturePolicyEnvelope{Rule: by(0), Identities: []*mspproto.MSPPrincipal{ou}}); err == nil ||
		!strings.Contains(err.Error(), "OU(A, sales)") {
		t.Errorf("OU principal: %v", err)
	}
	a := []*mspproto.MSPPrincipal{role("A", mspproto.MSPRole_MEMBER)}
	for _, rule := range []*cb.SignaturePolicy{by(0), outOf(1), outOf(3, by(0)), outOf(-1, by(0)), outOf(1, outOf(0))} {
		if s, err := FormatDSL(&cb.SignaturePolicyEnvelope{Rule: rule, Identities: a}); err == nil {
			t.Errorf("%v formatted as %q", rule, s)
		}
	}
	if _, err := FormatDSL(&cb.SignaturePolicyEnvelope{Rule: by(3)}); err == nil {
		t.Error("out-of-range index formatted")
	}
	if _, err := FormatDSL(nil); err == nil {
		t.Error("nil formatted")
	}
}

func TestParseImplicitMeta(t *testing.T) {
	for s, want := range map[string]*cb.ImplicitMetaPolicy{
		"ANY Writers":      {Rule: cb.ImplicitMetaPolicy_ANY, SubPolicy: "Writers"},
		"ALL Readers":      {Rule: cb.ImplicitMetaPolicy_ALL, SubPolicy: "Readers"},
		"MAJORITY Admins":  {Rule: cb.ImplicitMetaPolicy_MAJORITY, SubPolicy: "Admins"},
		"ANY Org1/Writers": {Rule: cb.ImplicitMetaPolicy_ANY, SubPolicy: "Org1/Writers"},
	} {
		got, err := ParseImplicitMeta(s)
		if err != nil || !proto.Equal(got, want) {
			t.Errorf("ParseImplicitMeta(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "ANY", "ANY  Writers", "any Writers", "SOME Writers", "ANY Writers extra"} {
		if _, err := ParseImplicitMeta(s); err == nil {
			t.Errorf("ParseImplicitMeta(%q) succeeded", s)
		}
	}
}

// FuzzParseDSL: never panic; whatever this parser accepts, Fabric's parser accepts too and
// produces the same envelope; formatting and parsing again is the identity.
func FuzzParseDSL(f *testing.F) {
	for _, s := range dslCorpus {
		f.Add(s)
	}
	f.Add("OutOf(3, 'A.member', 'B.member')")
	f.Add("OR('A.member', 'B.member'")
	f.Fuzz(func(t *testing.T, s string) {
		env, err := ParseDSL(s)
		if err != nil {
			return
		}
		want, ferr := fabricDSL(s)
		if ferr != nil {
			t.Fatalf("accepted %q, Fabric refuses it: %v", s, ferr)
		}
		if !proto.Equal(env, want) {
			t.Fatalf("%q:\n got %v\nwant %v", s, env, want)
		}
		text, err := FormatDSL(env)
		if err != nil {
			t.Fatalf("FormatDSL of parsed %q: %v", s, err)
		}
		again, err := ParseDSL(text)
		if err != nil || !proto.Equal(env, again) {
			t.Fatalf("%q formatted as %q does not parse back: %v", s, text, err)
		}
		if _, err := NewSignaturePolicy(env, newFakeMSPs("A")); err != nil {
			t.Fatalf("parsed %q does not compile: %v", s, err)
		}
	})
}
