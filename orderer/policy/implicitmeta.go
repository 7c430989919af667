package policy

import (
	"fmt"
	"sort"
	"strings"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
)

// implicitMeta is a compiled ImplicitMetaPolicy: a threshold over the policy named SubPolicy
// in each direct sub-group of the group holding it.
type implicitMeta struct {
	rule      cb.ImplicitMetaPolicy_Rule
	subPolicy string
	threshold int
	subs      []subPolicyRef // sorted by path, for stable messages
}

type subPolicyRef struct {
	path string
	p    evaluable
}

// compileImplicitMeta builds the policy against the sub-managers of its group. A sub-group
// lacking the sub-policy contributes a policy that is never satisfied (Fabric's behaviour:
// it is not a build error).
func compileImplicitMeta(value []byte, children map[string]*Tree) (*implicitMeta, error) {
	def := &cb.ImplicitMetaPolicy{}
	if err := proto.Unmarshal(value, def); err != nil {
		return nil, fmt.Errorf("unmarshalling ImplicitMetaPolicy: %w", err)
	}
	m := &implicitMeta{rule: def.Rule, subPolicy: def.SubPolicy, subs: make([]subPolicyRef, 0, len(children))}
	for _, child := range children {
		p, path := child.lookup(def.SubPolicy)
		m.subs = append(m.subs, subPolicyRef{path: path, p: p})
	}
	sort.Slice(m.subs, func(i, j int) bool { return m.subs[i].path < m.subs[j].path })
	m.threshold = implicitMetaThreshold(def.Rule, len(m.subs))
	return m, nil
}

// implicitMetaThreshold is Fabric's threshold: ANY 1, ALL every sub-group, MAJORITY more
// than half. With no sub-groups the threshold is 0 whatever the rule, so the policy is
// satisfied by any signature set, even an empty one. A rule value outside the enum also
// gets 0 (Fabric's switch has no default) — see check for what that means.
func implicitMetaThreshold(rule cb.ImplicitMetaPolicy_Rule, n int) int {
	if n == 0 {
		return 0
	}
	switch rule {
	case cb.ImplicitMetaPolicy_ANY:
		return 1
	case cb.ImplicitMetaPolicy_ALL:
		return n
	case cb.ImplicitMetaPolicy_MAJORITY:
		return n/2 + 1
	}
	return 0
}

// check counts satisfied sub-policies the way Fabric does: it stops as soon as the count
// reaches the threshold, and otherwise succeeds only if the count equals the threshold after
// visiting them all. For the known rules that is "at least threshold"; for an unknown rule
// value (threshold 0) with sub-groups it means "no sub-policy satisfied" — a Fabric quirk kept
// so that a mixed cluster agrees on such a config.
func (m *implicitMeta) check(st *evalState) error {
	satisfied := 0
	var failed []subPolicyRef
	var reasons []error
	for _, sub := range m.subs {
		err := sub.p.check(st)
		if err != nil {
			failed = append(failed, sub)
			reasons = append(reasons, err)
			continue
		}
		satisfied++
		if satisfied == m.threshold {
			return nil
		}
	}
	if satisfied == m.threshold {
		return nil
	}
	return &metaError{m: m, satisfied: satisfied, failed: failed, reasons: reasons}
}

// metaError is formatted on demand, like ruleError.
type metaError struct {
	m         *implicitMeta
	satisfied int
	failed    []subPolicyRef
	reasons   []error
}

func (e *metaError) Error() string {
	m := e.m
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d sub-policies satisfied, ", e.satisfied, len(m.subs))
	if _, known := cb.ImplicitMetaPolicy_Rule_name[int32(m.rule)]; known {
		fmt.Fprintf(&b, "%d required (%s %s)", m.threshold, m.rule, m.subPolicy)
	} else {
		fmt.Fprintf(&b, "none allowed (unknown rule %d over %s)", int32(m.rule), m.subPolicy)
	}
	if len(e.failed) > 0 {
		b.WriteString("; not satisfied: ")
		for i, f := range e.failed {
			if i == maxListed {
				fmt.Fprintf(&b, ", and %d more", len(e.failed)-maxListed)
				break
			}
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s (%v)", f.path, e.reasons[i])
		}
	}
	return b.String()
}
