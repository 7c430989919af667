package policy

import (
	"errors"
	"fmt"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
)

// signaturePolicy is a compiled SignaturePolicyEnvelope.
type signaturePolicy struct {
	src  *source
	rule *rule
	env  *cb.SignaturePolicyEnvelope // kept to describe the rule when it is not satisfied
}

// rule is one node of a compiled signature rule: an NOutOf gate (gate set) or a SignedBy leaf.
type rule struct {
	gate      bool
	n         int32
	subs      []*rule
	principal *mspproto.MSPPrincipal
}

// NewSignaturePolicy compiles a signature policy outside any manager tree, deserializing
// signers with d. Fabric's config path refuses envelopes of a version other than 0; so does
// this function (Fabric's struct-based provider, used by the peer for chaincode policies, does
// not check — nothing in the orderer needs that leniency).
func NewSignaturePolicy(env *cb.SignaturePolicyEnvelope, d Deserializer) (Policy, error) {
	sp, err := compileSignature(env, &source{d: d})
	if err != nil {
		return nil, err
	}
	return &named{p: sp}, nil
}

// compileSignatureBytes unmarshals and compiles the value of a SIGNATURE policy.
func compileSignatureBytes(value []byte, src *source) (*signaturePolicy, error) {
	env := &cb.SignaturePolicyEnvelope{}
	if err := proto.Unmarshal(value, env); err != nil {
		return nil, fmt.Errorf("unmarshalling SignaturePolicyEnvelope: %w", err)
	}
	return compileSignature(env, src)
}

func compileSignature(env *cb.SignaturePolicyEnvelope, src *source) (*signaturePolicy, error) {
	if env == nil {
		return nil, errors.New("nil SignaturePolicyEnvelope")
	}
	if env.Version != 0 {
		return nil, fmt.Errorf("signature policy version %d is not supported, only version 0", env.Version)
	}
	r, err := compileRule(env.Rule, env.Identities)
	if err != nil {
		return nil, err
	}
	return &signaturePolicy{src: src, rule: r, env: env}, nil
}

// compileRule checks a rule tree once so that evaluation never fails on its shape: a missing
// rule, an unset oneof, or a SignedBy index outside the identities is a compile error, as in
// Fabric (a nil principal, which Fabric would hand to the MSP, is one too).
func compileRule(sp *cb.SignaturePolicy, principals []*mspproto.MSPPrincipal) (*rule, error) {
	if sp == nil {
		return nil, errors.New("empty signature policy rule")
	}
	switch t := sp.Type.(type) {
	case *cb.SignaturePolicy_NOutOf_:
		if t.NOutOf == nil {
			return nil, errors.New("NOutOf rule without body")
		}
		r := &rule{gate: true, n: t.NOutOf.N, subs: make([]*rule, len(t.NOutOf.Rules))}
		for i, sub := range t.NOutOf.Rules {
			c, err := compileRule(sub, principals)
			if err != nil {
				return nil, err
			}
			r.subs[i] = c
		}
		return r, nil
	case *cb.SignaturePolicy_SignedBy:
		if t.SignedBy < 0 || int(t.SignedBy) >= len(principals) {
			return nil, fmt.Errorf("SignedBy index %d out of range: the policy has %d identities", t.SignedBy, len(principals))
		}
		p := principals[t.SignedBy]
		if p == nil {
			return nil, fmt.Errorf("identity %d of the policy is nil", t.SignedBy)
		}
		return &rule{principal: p}, nil
	default:
		return nil, fmt.Errorf("unknown signature policy rule type %T", sp.Type)
	}
}

// eval reports whether ids satisfy the rule, marking in used the identities it consumed.
//
// This is Fabric's algorithm exactly, quirks included, because a mixed cluster must reach the
// same verdict on the same signatures:
//   - a SignedBy leaf takes the first not-yet-used identity satisfying its principal (greedy,
//     in signature order) and marks it used;
//   - an NOutOf gate evaluates every sub-rule in order, even after N are satisfied. Each
//     sub-rule works on a copy of the used marks; the copy is kept when the sub-rule is
//     satisfied and dropped when it is not. There is no backtracking: a satisfied sub-rule's
//     choice of identity is final, so AND(OR(A, B), B) with signers A and B fails (the OR
//     consumes both).
//   - N ≤ 0 is always satisfied; N above the number of sub-rules never is.
func (r *rule) eval(ids []Identity, used []bool) bool {
	if !r.gate {
		for i, id := range ids {
			if used[i] {
				continue
			}
			if id.SatisfiesPrincipal(r.principal) != nil {
				continue
			}
			used[i] = true
			return true
		}
		return false
	}
	satisfied := 0
	scratch := make([]bool, len(used))
	for _, sub := range r.subs {
		copy(scratch, used)
		if sub.eval(ids, scratch) {
			satisfied++
			copy(used, scratch)
		}
	}
	return int64(satisfied) >= int64(r.n)
}

func (p *signaturePolicy) check(st *evalState) error {
	s := st.signers(p.src)
	if p.rule.eval(s.ids, make([]bool, len(s.ids))) {
		return nil
	}
	return &ruleError{env: p.env}
}

// ruleError formats the rule only when the message is wanted: a refused request should not
// cost more than an accepted one.
type ruleError struct {
	env *cb.SignaturePolicyEnvelope
}

func (e *ruleError) Error() string { return "requires " + describeRule(e.env) }
