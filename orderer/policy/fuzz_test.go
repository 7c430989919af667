package policy

import (
	"testing"

	"github.com/golang/protobuf/proto"
	cb "github.com/hyperledger/fabric-protos-go/common"
)

// FuzzNewManager feeds arbitrary bytes as a marshalled channel ConfigGroup, as the value of a
// policy of any type inside a well-formed channel, and as a lookup path. Building and
// evaluating must never panic, and a path that names no policy must never be satisfied.
//
// Each execution is kept cheap (one template channel, cloned) because the fuzzer minimises
// every interesting input by re-running it thousands of times.
func FuzzNewManager(f *testing.F) {
	template := appChannel(f)
	// The marshalled seed is a small channel: the fuzzer minimises each interesting input
	// byte by byte, which takes minutes for a kilobyte-sized one.
	group := mustMarshal(f, &cb.ConfigGroup{
		Groups: map[string]*cb.ConfigGroup{"Application": {
			Groups:   map[string]*cb.ConfigGroup{"Org1MSP": {Policies: map[string]*cb.ConfigPolicy{"Writers": sigPolicy(f, "OR('Org1MSP.member')")}}},
			Policies: map[string]*cb.ConfigPolicy{"Writers": metaPolicy(f, "ANY Writers")},
		}},
		Policies: map[string]*cb.ConfigPolicy{"Writers": metaPolicy(f, "ALL Writers")},
	})
	sig := mustMarshal(f, mustDSL(f, "OR('Org1MSP.member', AND('Org2MSP.admin', 'Org1MSP.peer'))"))
	full := mustMarshal(f, template)
	meta := mustMarshal(f, &cb.ImplicitMetaPolicy{Rule: cb.ImplicitMetaPolicy_MAJORITY, SubPolicy: "Admins"})
	f.Add(group, sig, int32(cb.Policy_SIGNATURE), "/Channel/Application/Org1MSP/Admins")
	f.Add(group, meta, int32(cb.Policy_IMPLICIT_META), "Application/Admins")
	f.Add([]byte{}, []byte{}, int32(cb.Policy_MSP), "")
	f.Add(group[:len(group)/2], sig[:len(sig)/2], int32(7), "/Channel")
	f.Add(group, meta, int32(cb.Policy_IMPLICIT_META), "/ChannelX")
	f.Add(full, meta, int32(cb.Policy_IMPLICIT_META), "Writers")

	msps := newFakeMSPs("OrdererMSP", "Org1MSP", "Org2MSP")
	sets := [][]*SignedData{
		sigs("Org1MSP/root/admin,peer", "Org2MSP/root/admin", "OrdererMSP/o/admin"),
		{bad("Org1MSP/alice"), good("Org3MSP/eve"), {Identity: []byte{0xff}}, good("Org2MSP/bob")},
	}
	evaluate := func(t *testing.T, tree *Tree, paths ...string) {
		for _, path := range paths {
			p, ok := tree.GetPolicy(path)
			for _, set := range sets {
				err := p.EvaluateSignedData(set)
				if !ok && err == nil {
					t.Fatalf("missing policy %q accepted a signature set", path)
				}
				if err != nil && err.Error() == "" {
					t.Fatalf("%q: empty error", path)
				}
			}
		}
	}

	f.Fuzz(func(t *testing.T, groupBytes, value []byte, typ int32, path string) {
		fuzzed := &cb.Policy{Type: typ, Value: value}

		g := &cb.ConfigGroup{}
		if proto.Unmarshal(groupBytes, g) == nil {
			if tree, err := NewManager(g, msps); err == nil {
				evaluate(t, tree, append(tree.Policies(), path, "/Channel")...)
				if p, err := tree.Compile("Fuzzed", fuzzed); err == nil {
					for _, set := range sets {
						_ = p.EvaluateSignedData(set)
					}
				}
				if sub, ok := tree.Manager("Application"); ok {
					evaluate(t, sub, path, "Admins")
				}
			}
		}

		channel := proto.Clone(template).(*cb.ConfigGroup)
		channel.Groups["Application"].Groups["Org1MSP"].Policies["Admins"] = &cb.ConfigPolicy{Policy: fuzzed}
		channel.Policies[path] = &cb.ConfigPolicy{Policy: fuzzed}
		if tree, err := NewManager(channel, msps); err == nil {
			evaluate(t, tree, path, "/Channel/"+path, ChannelApplicationAdmin, "/Channel/Application/Org1MSP/Admins")
		}
		if _, err := NewPolicy(fuzzed, msps); err == nil && typ != int32(cb.Policy_SIGNATURE) {
			t.Fatalf("stand-alone policy of type %d compiled", typ)
		}
	})
}
