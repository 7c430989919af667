package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
	mspproto "github.com/hyperledger/fabric-protos-go/msp"
)

// The policy DSL is the language of configtx.yaml's signature rules:
//
//	OR('Org1MSP.member', AND('Org2MSP.admin', 'Org3MSP.peer'))
//	OutOf(2, 'Org1MSP.member', 'Org2MSP.member', 'Org3MSP.member')
//
// Gates are AND, OR and OutOf, each spelled Title, lower or UPPER case (And/and/AND); a
// principal is a quoted 'MSPID.role' with role member, admin, client, peer or orderer and an
// MSP ID of ASCII letters, digits, '.' and '-'; OutOf's count is a number or a quoted number.
//
// Fabric evaluates the DSL with govaluate, which accepts a larger expression language; this
// parser takes only the part above and, for it, produces exactly Fabric's envelope (the test
// checks it against fabric-config's copy of Fabric's parser):
//   - principals are not de-duplicated: every occurrence gets its own identity;
//   - identities are numbered gate by gate, a gate's own principals after all the principals
//     of the gates nested in it (govaluate calls the inner functions first), so
//     OR('A.member', AND('B.member', 'C.member')) lists B, C, A;
//   - OutOf's count may range from 0 to one more than the number of its arguments.

// maxDSLDepth bounds gate nesting; real policies nest two or three deep.
const maxDSLDepth = 100

// ParseDSL parses a signature policy written in Fabric's policy DSL.
func ParseDSL(s string) (*cb.SignaturePolicyEnvelope, error) {
	p := &dslParser{s: s}
	g, err := p.gate(0)
	if err != nil {
		return nil, fmt.Errorf("policy %q: %w", truncate(s, 80), err)
	}
	p.space()
	if p.pos != len(p.s) {
		return nil, fmt.Errorf("policy %q: unexpected %q at offset %d", truncate(s, 80), truncate(p.s[p.pos:], 20), p.pos)
	}
	env := &cb.SignaturePolicyEnvelope{Version: 0, Identities: []*mspproto.MSPPrincipal{}}
	rule, err := g.build(env)
	if err != nil {
		return nil, fmt.Errorf("policy %q: %w", truncate(s, 80), err)
	}
	env.Rule = rule
	return env, nil
}

type dslGate struct {
	n    int
	args []dslArg
}

// dslArg is either a nested gate or a principal.
type dslArg struct {
	gate *dslGate
	msp  string
	role mspproto.MSPRole_MSPRoleType
}

// build turns the parsed gate into a rule, numbering identities in Fabric's order: nested
// gates first (left to right), then this gate's own principals (left to right).
func (g *dslGate) build(env *cb.SignaturePolicyEnvelope) (*cb.SignaturePolicy, error) {
	rules := make([]*cb.SignaturePolicy, len(g.args))
	for i, a := range g.args {
		if a.gate == nil {
			continue
		}
		r, err := a.gate.build(env)
		if err != nil {
			return nil, err
		}
		rules[i] = r
	}
	for i, a := range g.args {
		if a.gate != nil {
			continue
		}
		role, err := proto.Marshal(&mspproto.MSPRole{MspIdentifier: a.msp, Role: a.role})
		if err != nil {
			return nil, fmt.Errorf("marshalling MSPRole: %w", err)
		}
		rules[i] = &cb.SignaturePolicy{Type: &cb.SignaturePolicy_SignedBy{SignedBy: int32(len(env.Identities))}}
		env.Identities = append(env.Identities, &mspproto.MSPPrincipal{
			PrincipalClassification: mspproto.MSPPrincipal_ROLE,
			Principal:               role,
		})
	}
	return &cb.SignaturePolicy{Type: &cb.SignaturePolicy_NOutOf_{NOutOf: &cb.SignaturePolicy_NOutOf{
		N:     int32(g.n),
		Rules: rules,
	}}}, nil
}

type dslParser struct {
	s   string
	pos int
}

func (p *dslParser) space() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *dslParser) peek() byte {
	p.space()
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

func (p *dslParser) expect(c byte) error {
	if p.peek() != c {
		if p.pos >= len(p.s) {
			return fmt.Errorf("expected %q at end of input", c)
		}
		return fmt.Errorf("expected %q at offset %d, found %q", c, p.pos, p.s[p.pos])
	}
	p.pos++
	return nil
}

func (p *dslParser) word() string {
	p.space()
	start := p.pos
	for p.pos < len(p.s) && isWordByte(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos]
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func (p *dslParser) quoted() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", fmt.Errorf("expected a quoted string at offset %d", p.pos)
	}
	start := p.pos + 1
	end := strings.IndexByte(p.s[start:], q)
	if end < 0 {
		return "", fmt.Errorf("unterminated string at offset %d", p.pos)
	}
	v := p.s[start : start+end]
	if strings.IndexByte(v, '\\') >= 0 {
		return "", fmt.Errorf("escape sequences are not supported (string at offset %d)", p.pos)
	}
	p.pos = start + end + 1
	return v, nil
}

const (
	gateAnd = iota
	gateOr
	gateOutOf
)

func gateKind(name string) (int, bool) {
	switch name {
	case "And", "and", "AND":
		return gateAnd, true
	case "Or", "or", "OR":
		return gateOr, true
	case "OutOf", "outof", "OUTOF":
		return gateOutOf, true
	}
	return 0, false
}

func (p *dslParser) gate(depth int) (*dslGate, error) {
	if depth >= maxDSLDepth {
		return nil, fmt.Errorf("gates nested deeper than %d", maxDSLDepth)
	}
	at := p.peekPos()
	name := p.word()
	kind, ok := gateKind(name)
	if !ok {
		if name == "" {
			return nil, fmt.Errorf("expected AND, OR or OutOf at offset %d", at)
		}
		return nil, fmt.Errorf("unknown gate %q at offset %d (want AND, OR or OutOf)", name, at)
	}
	if err := p.expect('('); err != nil {
		return nil, err
	}
	g := &dslGate{}
	hasCount := false
	if kind == gateOutOf {
		n, err := p.count()
		if err != nil {
			return nil, err
		}
		g.n = n
		hasCount = true
	}
	for first := !hasCount; ; first = false {
		if !first {
			if p.peek() == ')' {
				break
			}
			if p.peek() != ',' {
				if p.pos >= len(p.s) {
					return nil, errors.New("expected ',' or ')' at end of input")
				}
				return nil, fmt.Errorf("expected ',' or ')' at offset %d, found %q", p.pos, p.s[p.pos])
			}
			p.pos++
		}
		a, err := p.arg(depth)
		if err != nil {
			return nil, err
		}
		g.args = append(g.args, a)
	}
	if err := p.expect(')'); err != nil {
		return nil, err
	}
	switch kind {
	case gateAnd:
		g.n = len(g.args)
	case gateOr:
		g.n = 1
	default:
		if len(g.args) == 0 {
			return nil, fmt.Errorf("OutOf at offset %d has no principals", at)
		}
		if g.n > len(g.args)+1 {
			return nil, fmt.Errorf("OutOf(%d, ...) at offset %d has only %d arguments", g.n, at, len(g.args))
		}
	}
	return g, nil
}

func (p *dslParser) peekPos() int {
	p.space()
	return p.pos
}

// count reads OutOf's first argument: a non-negative integer, bare or quoted.
func (p *dslParser) count() (int, error) {
	at := p.peekPos()
	var digits string
	if c := p.peek(); c == '\'' || c == '"' {
		v, err := p.quoted()
		if err != nil {
			return 0, err
		}
		digits = strings.TrimSpace(v)
	} else {
		digits = p.word()
	}
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, fmt.Errorf("OutOf count at offset %d must be a non-negative integer", at)
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n > 1<<20 {
		return 0, fmt.Errorf("OutOf count %s at offset %d is too large", truncate(digits, 20), at)
	}
	return n, nil
}

func (p *dslParser) arg(depth int) (dslArg, error) {
	at := p.peekPos()
	if c := p.peek(); c != '\'' && c != '"' {
		g, err := p.gate(depth + 1)
		if err != nil {
			return dslArg{}, err
		}
		return dslArg{gate: g}, nil
	}
	v, err := p.quoted()
	if err != nil {
		return dslArg{}, err
	}
	msp, role, err := parsePrincipal(v)
	if err != nil {
		return dslArg{}, fmt.Errorf("principal at offset %d: %w", at, err)
	}
	return dslArg{msp: msp, role: role}, nil
}

var dslRoles = map[string]mspproto.MSPRole_MSPRoleType{
	"member":  mspproto.MSPRole_MEMBER,
	"admin":   mspproto.MSPRole_ADMIN,
	"client":  mspproto.MSPRole_CLIENT,
	"peer":    mspproto.MSPRole_PEER,
	"orderer": mspproto.MSPRole_ORDERER,
}

// parsePrincipal splits 'MSPID.role' at its last dot (an MSP ID may contain dots).
func parsePrincipal(v string) (string, mspproto.MSPRole_MSPRoleType, error) {
	dot := strings.LastIndexByte(v, '.')
	if dot <= 0 {
		return "", 0, fmt.Errorf("%q is not MSPID.role", truncate(v, 40))
	}
	msp, roleName := v[:dot], v[dot+1:]
	role, ok := dslRoles[roleName]
	if !ok {
		return "", 0, fmt.Errorf("%q: unknown role %q (want member, admin, client, peer or orderer)", truncate(v, 40), truncate(roleName, 20))
	}
	for i := 0; i < len(msp); i++ {
		c := msp[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return "", 0, fmt.Errorf("%q: MSP ID may hold only letters, digits, '.' and '-'", truncate(v, 40))
		}
	}
	return msp, role, nil
}

// FormatDSL writes a signature policy in the DSL: a gate is OR when it needs one sub-rule,
// AND when it needs all of them, OutOf(n, ...) otherwise; ParseDSL reads the result back into
// the same envelope. A policy the DSL cannot express (a principal other than a ROLE, a bare
// SignedBy at the top, a gate without sub-rules, a count out of range) or that does not
// compile is an error.
func FormatDSL(env *cb.SignaturePolicyEnvelope) (string, error) {
	if env == nil {
		return "", errors.New("nil SignaturePolicyEnvelope")
	}
	names := make([]string, len(env.Identities))
	for i, p := range env.Identities {
		s, ok := principalDSL(p)
		if !ok {
			return "", fmt.Errorf("identity %d (%s) has no DSL form", i, describePrincipal(p))
		}
		names[i] = s
	}
	if _, err := compileRule(env.Rule, env.Identities); err != nil {
		return "", err
	}
	if err := dslExpressible(env.Rule); err != nil {
		return "", err
	}
	var b strings.Builder
	writeRule(&b, env.Rule, names, -1)
	return b.String(), nil
}

// dslExpressible checks what the DSL cannot say: a gate without sub-rules, a count outside
// 0..len+1, or a rule directly at the top that is not a gate.
func dslExpressible(sp *cb.SignaturePolicy) error {
	g, ok := sp.GetType().(*cb.SignaturePolicy_NOutOf_)
	if !ok {
		return errors.New("a rule that is not a gate has no DSL form")
	}
	return dslGateExpressible(g.NOutOf)
}

func dslGateExpressible(g *cb.SignaturePolicy_NOutOf) error {
	if len(g.Rules) == 0 {
		return errors.New("a gate without sub-rules has no DSL form")
	}
	if g.N < 0 || int(g.N) > len(g.Rules)+1 {
		return fmt.Errorf("OutOf(%d) over %d sub-rules has no DSL form", g.N, len(g.Rules))
	}
	for _, r := range g.Rules {
		if sub, ok := r.GetType().(*cb.SignaturePolicy_NOutOf_); ok {
			if err := dslGateExpressible(sub.NOutOf); err != nil {
				return err
			}
		}
	}
	return nil
}

// describeRule renders a compiled policy's rule for an error message, bounded in length;
// principals without a DSL form are described instead.
func describeRule(env *cb.SignaturePolicyEnvelope) string {
	names := make([]string, len(env.Identities))
	for i, p := range env.Identities {
		if s, ok := principalDSL(p); ok {
			names[i] = s
		} else {
			names[i] = describePrincipal(p)
		}
	}
	var b strings.Builder
	writeRule(&b, env.Rule, names, 400)
	return b.String()
}

// writeRule writes sp; limit > 0 stops the output (with "...") once it is that long.
func writeRule(b *strings.Builder, sp *cb.SignaturePolicy, names []string, limit int) {
	if limit > 0 && b.Len() >= limit {
		b.WriteString("...")
		return
	}
	switch t := sp.GetType().(type) {
	case *cb.SignaturePolicy_SignedBy:
		if t.SignedBy >= 0 && int(t.SignedBy) < len(names) {
			b.WriteString(names[t.SignedBy])
		} else {
			fmt.Fprintf(b, "identity#%d", t.SignedBy)
		}
	case *cb.SignaturePolicy_NOutOf_:
		rules := t.NOutOf.GetRules()
		n := t.NOutOf.GetN()
		switch {
		case n == 1:
			b.WriteString("OR(")
		case int(n) == len(rules):
			b.WriteString("AND(")
		default:
			fmt.Fprintf(b, "OutOf(%d", n)
			if len(rules) > 0 {
				b.WriteString(", ")
			}
		}
		for i, r := range rules {
			if i > 0 {
				b.WriteString(", ")
			}
			if limit > 0 && b.Len() >= limit {
				b.WriteString("...")
				break
			}
			writeRule(b, r, names, limit)
		}
		b.WriteString(")")
	default:
		b.WriteString("?")
	}
}

// principalDSL is the DSL form of a ROLE principal with a DSL-expressible MSP ID and role.
func principalDSL(p *mspproto.MSPPrincipal) (string, bool) {
	if p == nil || p.PrincipalClassification != mspproto.MSPPrincipal_ROLE {
		return "", false
	}
	role := &mspproto.MSPRole{}
	if err := proto.Unmarshal(p.Principal, role); err != nil {
		return "", false
	}
	for name, r := range dslRoles {
		if r == role.Role {
			s := role.MspIdentifier + "." + name
			if _, _, err := parsePrincipal(s); err != nil {
				return "", false
			}
			return "'" + s + "'", true
		}
	}
	return "", false
}

// describePrincipal names any principal for a message.
func describePrincipal(p *mspproto.MSPPrincipal) string {
	if p == nil {
		return "nil principal"
	}
	switch p.PrincipalClassification {
	case mspproto.MSPPrincipal_ROLE:
		role := &mspproto.MSPRole{}
		if err := proto.Unmarshal(p.Principal, role); err == nil {
			return fmt.Sprintf("role(%s, %s)", truncate(role.MspIdentifier, 40), role.Role)
		}
	case mspproto.MSPPrincipal_ORGANIZATION_UNIT:
		ou := &mspproto.OrganizationUnit{}
		if err := proto.Unmarshal(p.Principal, ou); err == nil {
			return fmt.Sprintf("OU(%s, %s)", truncate(ou.MspIdentifier, 40), truncate(ou.OrganizationalUnitIdentifier, 40))
		}
	case mspproto.MSPPrincipal_IDENTITY:
		id := &mspproto.SerializedIdentity{}
		if err := proto.Unmarshal(p.Principal, id); err == nil {
			return fmt.Sprintf("identity(%s)", truncate(id.Mspid, 40))
		}
	}
	return fmt.Sprintf("principal(%s)", p.PrincipalClassification)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// ParseImplicitMeta parses configtx.yaml's implicit-meta rule form, "<ANY|ALL|MAJORITY>
// <SubPolicy>", with exactly one space between the two, as Fabric does.
func ParseImplicitMeta(s string) (*cb.ImplicitMetaPolicy, error) {
	parts := strings.Split(s, " ")
	if len(parts) != 2 {
		return nil, fmt.Errorf("implicit meta rule %q: want two space-separated tokens, got %d", truncate(s, 80), len(parts))
	}
	rule, ok := cb.ImplicitMetaPolicy_Rule_value[parts[0]]
	if !ok {
		return nil, fmt.Errorf("implicit meta rule %q: unknown rule %q, want ANY, ALL or MAJORITY", truncate(s, 80), truncate(parts[0], 20))
	}
	return &cb.ImplicitMetaPolicy{Rule: cb.ImplicitMetaPolicy_Rule(rule), SubPolicy: parts[1]}, nil
}
