package policy

import (
	"errors"
	"strings"
	"testing"

	cb "github.com/hyperledger/fabric-protos-go/common"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
)

func TestSignaturePolicyEvaluation(t *testing.T) {
	for _, tc := range []struct {
		name string
		dsl  string
		sigs []*SignedData
		ok   bool
	}{
		{"1-of-2 first", "OR('A.member', 'B.member')", sigs("A/alice"), true},
		{"1-of-2 second", "OR('A.member', 'B.member')", sigs("B/bob"), true},
		{"1-of-2 none", "OR('A.member', 'B.member')", nil, false},
		{"1-of-2 other MSP", "OR('A.member', 'B.member')", sigs("C/carol"), false},
		{"2-of-2", "AND('A.member', 'B.member')", sigs("A/alice", "B/bob"), true},
		{"2-of-2 signer order irrelevant", "AND('A.member', 'B.member')", sigs("B/bob", "A/alice"), true},
		{"2-of-2 one missing", "AND('A.member', 'B.member')", sigs("A/alice"), false},
		{"2-of-2 same principal twice, one identity twice", "AND('A.member', 'A.member')", sigs("A/alice", "A/alice"), false},
		{"2-of-2 same principal twice, two identities", "AND('A.member', 'A.member')", sigs("A/alice", "A/alan"), true},
		{"duplicate signatures count once", "OutOf(2, 'A.member', 'A.member', 'A.member')", sigs("A/alice", "A/alice", "A/alice"), false},
		{"bad signature skipped", "AND('A.member', 'B.member')", []*SignedData{bad("A/alice"), good("B/bob")}, false},
		{"bad then good by same identity counts", "AND('A.member', 'B.member')", []*SignedData{bad("A/alice"), good("A/alice"), good("B/bob")}, true},
		{"good then bad by same identity", "AND('A.member', 'B.member')", []*SignedData{good("A/alice"), bad("A/alice"), good("B/bob")}, true},
		{"unknown MSP skipped", "OR('A.member')", sigs("X/xavier", "A/alice"), true},
		{"undecodable identity skipped", "OR('A.member')", []*SignedData{{Identity: []byte{0xff}}, good("A/alice")}, true},
		{"nil signed data skipped", "OR('A.member')", []*SignedData{nil, good("A/alice")}, true},
		{"admin role", "OR('A.admin')", sigs("A/alice"), false},
		{"admin role satisfied", "OR('A.admin')", sigs("A/alice/admin"), true},
		{"nested, left branch", "OR('A.member', AND('B.member', 'C.member'))", sigs("A/alice"), true},
		{"nested, right branch", "OR('A.member', AND('B.member', 'C.member'))", sigs("C/carol", "B/bob"), true},
		{"nested, half right branch", "OR('A.member', AND('B.member', 'C.member'))", sigs("B/bob"), false},
		{"deep nesting", "AND(OR('A.admin', AND('B.member', OutOf(2, 'C.member', 'D.member', 'E.member'))), 'F.member')",
			sigs("F/f", "B/b", "E/e", "C/c"), true},
		{"deep nesting short", "AND(OR('A.admin', AND('B.member', OutOf(2, 'C.member', 'D.member', 'E.member'))), 'F.member')",
			sigs("F/f", "B/b", "E/e"), false},
		// Fabric's NOutOf evaluates every sub-rule even once N are satisfied, and a satisfied
		// sub-rule keeps the identities it used: the OR below takes both A and B, leaving
		// nothing for the second B leaf.
		{"no backtracking: OR consumes both", "AND(OR('A.member', 'B.member'), 'B.member')", sigs("A/alice", "B/bob"), false},
		{"no backtracking: a second B suffices", "AND(OR('A.member', 'B.member'), 'B.member')", sigs("A/alice", "B/bob", "B/bea"), true},
		// A SignedBy leaf takes the first unused identity that matches, in signature order.
		{"greedy: admin consumed by member leaf", "AND('A.member', 'A.admin')", sigs("A/root/admin", "A/alice"), false},
		{"greedy: order that works", "AND('A.member', 'A.admin')", sigs("A/alice", "A/root/admin"), true},
		// A sub-rule that fails gives back what it had taken.
		{"failed sub-rule releases identities", "OR(AND('A.member', 'B.member'), 'A.member')", sigs("A/alice"), true},
		{"N=0 always", "OutOf(0, 'A.member')", nil, true},
		{"N above sub-rules never", "OutOf(2, 'A.member')", sigs("A/alice", "A/alan"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msps := newFakeMSPs("A", "B", "C", "D", "E", "F")
			p, err := NewSignaturePolicy(mustDSL(t, tc.dsl), msps)
			if err != nil {
				t.Fatal(err)
			}
			err = p.EvaluateSignedData(tc.sigs)
			if (err == nil) != tc.ok {
				t.Fatalf("%s over %d signatures: err = %v, want ok=%v", tc.dsl, len(tc.sigs), err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrNotSatisfied) {
				t.Fatalf("error %v does not match ErrNotSatisfied", err)
			}
		})
	}
}

// Duplicates are dropped before their signature is checked: a thousand copies of one
// signature cost one verification.
func TestDuplicateSignaturesVerifiedOnce(t *testing.T) {
	msps := newFakeMSPs("A")
	p, err := NewSignaturePolicy(mustDSL(t, "OR('A.admin')"), msps)
	if err != nil {
		t.Fatal(err)
	}
	set := make([]*SignedData, 1000)
	for i := range set {
		set[i] = good("A/alice")
	}
	if err := p.EvaluateSignedData(set); err == nil {
		t.Fatal("member satisfied admin")
	} else if !strings.Contains(err.Error(), "#1: same identity as #0") || !strings.Contains(err.Error(), "and 991 more") {
		t.Fatalf("error does not describe the duplicates briefly: %v", err)
	}
	if n := msps.verifies.Load(); n != 1 {
		t.Fatalf("%d verifications, want 1", n)
	}
}

func TestSignaturePolicyErrorMessage(t *testing.T) {
	msps := newFakeMSPs("A", "B")
	p, err := NewSignaturePolicy(mustDSL(t, "AND('A.admin', 'B.member')"), msps)
	if err != nil {
		t.Fatal(err)
	}
	err = p.EvaluateSignedData([]*SignedData{good("A/alice"), good("X/x"), bad("B/bob")})
	want := []string{
		"signature set did not satisfy policy: requires AND('A.admin', 'B.member')",
		"3 signatures, valid from [A]",
		`#1: invalid identity: unknown MSP "X"`,
		"#2: invalid signature: signature mismatch",
	}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("error %v lacks %q", err, w)
		}
	}
}

func TestSignaturePolicyCompileErrors(t *testing.T) {
	member := &mspproto.MSPPrincipal{Principal: mustMarshal(t, &mspproto.MSPRole{MspIdentifier: "A"})}
	signedBy := func(i int32) *cb.SignaturePolicy {
		return &cb.SignaturePolicy{Type: &cb.SignaturePolicy_SignedBy{SignedBy: i}}
	}
	for _, tc := range []struct {
		name string
		env  *cb.SignaturePolicyEnvelope
		want string
	}{
		{"nil", nil, "nil SignaturePolicyEnvelope"},
		{"version", &cb.SignaturePolicyEnvelope{Version: 1, Rule: signedBy(0), Identities: []*mspproto.MSPPrincipal{member}}, "version 1"},
		{"no rule", &cb.SignaturePolicyEnvelope{}, "empty signature policy rule"},
		{"unset oneof", &cb.SignaturePolicyEnvelope{Rule: &cb.SignaturePolicy{}}, "unknown signature policy rule type"},
		{"index out of range", &cb.SignaturePolicyEnvelope{Rule: signedBy(1), Identities: []*mspproto.MSPPrincipal{member}}, "SignedBy index 1 out of range"},
		{"negative index", &cb.SignaturePolicyEnvelope{Rule: signedBy(-1), Identities: []*mspproto.MSPPrincipal{member}}, "SignedBy index -1 out of range"},
		{"nested out of range", &cb.SignaturePolicyEnvelope{Rule: &cb.SignaturePolicy{Type: &cb.SignaturePolicy_NOutOf_{NOutOf: &cb.SignaturePolicy_NOutOf{
			N: 1, Rules: []*cb.SignaturePolicy{signedBy(0), signedBy(5)}}}}, Identities: []*mspproto.MSPPrincipal{member}}, "SignedBy index 5"},
		{"nil sub-rule", &cb.SignaturePolicyEnvelope{Rule: &cb.SignaturePolicy{Type: &cb.SignaturePolicy_NOutOf_{NOutOf: &cb.SignaturePolicy_NOutOf{
			N: 1, Rules: []*cb.SignaturePolicy{nil}}}}}, "empty signature policy rule"},
		{"nil NOutOf", &cb.SignaturePolicyEnvelope{Rule: &cb.SignaturePolicy{Type: &cb.SignaturePolicy_NOutOf_{}}}, "NOutOf rule without body"},
		{"nil principal", &cb.SignaturePolicyEnvelope{Rule: signedBy(0), Identities: []*mspproto.MSPPrincipal{nil}}, "identity 0 of the policy is nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSignaturePolicy(tc.env, newFakeMSPs("A"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestNewPolicy(t *testing.T) {
	msps := newFakeMSPs("A")
	p, err := NewPolicy(sigPolicy(t, "OR('A.member')").Policy, msps)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.EvaluateSignedData(sigs("A/alice")); err != nil {
		t.Fatal(err)
	}
	if _, err := NewPolicy(metaPolicy(t, "ANY Admins").Policy, msps); err == nil {
		t.Fatal("a stand-alone implicit meta policy compiled")
	}
	if _, err := NewPolicy(&cb.Policy{Type: int32(cb.Policy_SIGNATURE), Value: []byte{0xff}}, msps); err == nil {
		t.Fatal("garbage compiled")
	}
	if _, err := NewPolicy(nil, msps); err == nil {
		t.Fatal("nil compiled")
	}
	// A nil deserializer is not a panic: every signature is skipped.
	p, err = NewPolicy(sigPolicy(t, "OR('A.member')").Policy, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.EvaluateSignedData(sigs("A/alice")); err == nil || !strings.Contains(err.Error(), "no identity deserializer") {
		t.Fatalf("err = %v", err)
	}
}

// invalidIdentity is an identity its MSP does not accept (revoked, say): it signs correctly
// but satisfies no principal.
type invalidIdentity struct {
	Identity
	err error
}

func (i invalidIdentity) Validate() error                                 { return i.err }
func (i invalidIdentity) SatisfiesPrincipal(*mspproto.MSPPrincipal) error { return i.err }

type revokingMSPs struct {
	*fakeMSPs
	revoked string
}

func (m revokingMSPs) DeserializeIdentity(b []byte) (Identity, error) {
	id, err := m.fakeMSPs.DeserializeIdentity(b)
	if err == nil && id.(*fakeIdentity).name == m.revoked {
		return invalidIdentity{id, errors.New("identity alice is not valid: certificate is revoked")}, nil
	}
	return id, err
}

// TestSignaturePolicyErrorNamesInvalidSigners: a signer with a good signature whose identity
// its MSP refuses is named in the refusal with the MSP's reason, so that an operator sees
// "revoked" rather than only the rule that was not met.
func TestSignaturePolicyErrorNamesInvalidSigners(t *testing.T) {
	msps := revokingMSPs{newFakeMSPs("A", "B"), "alice"}
	p, err := NewSignaturePolicy(mustDSL(t, "OR('A.member', 'B.admin')"), msps)
	if err != nil {
		t.Fatal(err)
	}
	err = p.EvaluateSignedData([]*SignedData{good("B/bob"), good("A/alice")})
	want := []string{"2 signatures, valid from [B A]", "#1: identity alice is not valid: certificate is revoked"}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("error %v lacks %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "#0") {
		t.Fatalf("error %v names the valid signer", err)
	}
}
